"""The `segment` command line: parses options into a SegmentConfig and calls the API.

Exit codes: 0 success, 1 some input failed (one line per failure on stderr),
2 usage error (bad option value), 130 stopped by Ctrl-C, 143 stopped by SIGTERM
(128 + the signal, as a shell reports it).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import gc
import inspect
import signal
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from segment import __version__
from segment.config import (
    AUTO,
    COLOR_SPACES,
    CONFIDENCE_FORMATS,
    COVARIANCE_TYPES,
    DENOISE_FILTERS,
    INIT_METHODS,
    LABEL_FORMATS,
    MERGE_TARGETS,
    MODE_DEFAULTS,
    MODES,
    VOLUME_DEFAULTS,
    SegmentConfig,
    volume_defaults,
)


class ExitCode(enum.IntEnum):
    """Process exit codes."""

    OK = 0
    FAILED = 1
    USAGE = 2
    INTERRUPTED = 130  # 128 + SIGINT
    TERMINATED = 143  # 128 + SIGTERM


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    return enum.Enum(name, {v.replace("+", "_plus_plus"): v for v in values}, type=str)


ColorSpace = _choices("ColorSpace", COLOR_SPACES)
Covariance = _choices("Covariance", COVARIANCE_TYPES)
InitMethod = _choices("InitMethod", INIT_METHODS)
Denoise = _choices("Denoise", DENOISE_FILTERS)
ConfidenceFormat = _choices("ConfidenceFormat", CONFIDENCE_FORMATS)
MergeTarget = _choices("MergeTarget", MERGE_TARGETS)
LabelFormat = _choices("LabelFormat", LABEL_FORMATS)
Mode = _choices("Mode", MODES)

_DEFAULT = SegmentConfig()
_MODEL_PANEL = "Model"
_IMAGE_PANEL = "Preprocessing and post-processing"
_OUTPUT_PANEL = "Output and resources"


def _by_mode(name: str) -> str:
    """Help text naming a field's default in each mode, e.g. "(default: 0.5 regions, 0 classes)"."""
    def shown(value: Any) -> str:
        return ("on" if value else "off") if isinstance(value, bool) else f"{value:g}"

    defaults = [f"{shown(d[name])} {mode}" for mode, d in MODE_DEFAULTS.items()]
    if name in VOLUME_DEFAULTS:
        defaults.append(f"{shown(VOLUME_DEFAULTS[name])} volumes")
    return "(default: " + ", ".join(defaults) + ")"


# (config field, annotation, default, flags, help, panel)
_CONFIG_OPTIONS: list[tuple[str, Any, Any, tuple[str, ...], str, str]] = [
    ("mode", Optional[Mode], None, ("--mode",),
     "regions: the regions a person would outline; classes: per-pixel classes (ink/paper, tissues), "
     "ids by mean luminance, bias-field corrected (default: regions for images, classes for volumes).", _MODEL_PANEL),
    ("n_components", str, str(_DEFAULT.n_components), ("-k", "--components"),
     "Number of mixture components, or 'auto' (count the colour classes).", _MODEL_PANEL),
    ("color_space", ColorSpace, ColorSpace(_DEFAULT.color_space), ("--color-space",),
     "Colour features.", _MODEL_PANEL),
    ("position_weight", Optional[float], None, ("--position-weight",),
     "Weight of x,y: 1 makes the image's long side count as much as black-to-white; 0 = off "
     + _by_mode("position_weight") + ".", _MODEL_PANEL),
    ("covariance_type", Optional[Covariance], None, ("--covariance",),
     "Covariance structure of the components (default: full regions, tied classes).", _MODEL_PANEL),
    ("smoothing", Optional[float], None, ("--smooth",),
     "Strength (beta) of the spatial Potts prior on the labels; 0 = plain per-pixel mixture "
     + _by_mode("smoothing") + ".", _MODEL_PANEL),
    ("bias", Optional[bool], None, ("--bias/--no-bias",),
     "Estimate a smooth bias field (uneven light) inside EM and label the corrected image " + _by_mode("bias") + ".",
     _MODEL_PANEL),
    ("work_pixels", int, _DEFAULT.work_pixels, ("--work-pixels",),
     "Larger images are smoothed and merged on a copy this size, boundaries placed at full resolution; 0 = off.",
     _MODEL_PANEL),
    ("max_iter", int, _DEFAULT.max_iter, ("--max-iter",), "Maximum EM iterations.", _MODEL_PANEL),
    ("tol", float, _DEFAULT.tol, ("--tol",), "Convergence threshold on the mean log-likelihood.", _MODEL_PANEL),
    ("reg_covar", float, _DEFAULT.reg_covar, ("--reg-covar",), "Added to covariance diagonals.", _MODEL_PANEL),
    ("n_init", int, _DEFAULT.n_init, ("--n-init",), "Number of initialisations (best kept).", _MODEL_PANEL),
    ("init_params", InitMethod, InitMethod(_DEFAULT.init_params), ("--init",), "Initialisation of the means.", _MODEL_PANEL),
    ("seed", int, _DEFAULT.seed, ("--seed",), "Random seed (same seed, same labels).", _MODEL_PANEL),
    ("fit_sample", int, _DEFAULT.fit_sample, ("--fit-sample",),
     "Fit on at most this many pixels (grid sample), then label all; 0 = all.", _MODEL_PANEL),
    ("bands", Optional[str], None, ("--bands",),
     "Bands of a multiband image used as features, e.g. 1,2,4 (default: all).", _IMAGE_PANEL),
    ("display_bands", Optional[str], None, ("--display-bands",),
     "Three bands drawn as red,green,blue in the pictures, e.g. 4,3,2.", _IMAGE_PANEL),
    ("nodata", Optional[float], _DEFAULT.nodata, ("--nodata",),
     "Pixels with this value in every band take no part and get label 0 (default: the file's nodata).", _IMAGE_PANEL),
    ("level", Optional[int], _DEFAULT.level, ("--level",),
     "Pyramid level of a pyramidal/whole-slide TIFF (0 = full resolution).", _IMAGE_PANEL),
    ("dpi", float, _DEFAULT.dpi, ("--dpi",), "Resolution at which PDF pages are rendered.", _IMAGE_PANEL),
    ("volume", bool, _DEFAULT.volume, ("--volume",),
     "Read a multi-page TIFF as one (Z, H, W) volume instead of pages (NIfTI .nii/.nii.gz always is).", _IMAGE_PANEL),
    ("max_side", Optional[int], _DEFAULT.max_side, ("--max-side",), "Downscale so the longer side is at most this.", _IMAGE_PANEL),
    ("denoise", Denoise, Denoise(_DEFAULT.denoise), ("--denoise",), "Pre-filter before features.", _IMAGE_PANEL),
    ("denoise_size", int, _DEFAULT.denoise_size, ("--denoise-size",), "Pre-filter kernel diameter (odd).", _IMAGE_PANEL),
    ("min_size", int, _DEFAULT.min_size, ("--min-size",),
     "Merge regions smaller than this many pixels into a neighbour (see --merge-into).", _IMAGE_PANEL),
    ("min_fraction", Optional[float], None, ("--min-fraction",),
     "Merge regions smaller than this fraction of the image's pixels (the larger threshold applies) "
     + _by_mode("min_fraction") + ".", _IMAGE_PANEL),
    ("merge_cost", Optional[float], None, ("--merge-cost",),
     "Merge adjacent regions, most alike first, while the learned odds against their being one object are below this "
     "(0 = off) " + _by_mode("merge_cost") + ".", _IMAGE_PANEL),
    ("merge_into", MergeTarget, MergeTarget(_DEFAULT.merge_into), ("--merge-into",),
     "A small region joins its most similar neighbour (mean colour) or its longest-border one.", _IMAGE_PANEL),
    ("hole_size", int, _DEFAULT.hole_size, ("--hole-size",), "Fill enclosed regions smaller than this.", _IMAGE_PANEL),
    ("opening_radius", int, _DEFAULT.opening_radius, ("--opening",), "Per-label opening radius (0 = off).", _IMAGE_PANEL),
    ("closing_radius", int, _DEFAULT.closing_radius, ("--closing",), "Per-label closing radius (0 = off).", _IMAGE_PANEL),
    ("relabel", Optional[bool], None, ("--relabel/--no-relabel",),
     "One label per connected region instead of per component " + _by_mode("relabel") + ".", _IMAGE_PANEL),
    ("save", str, ",".join(_DEFAULT.save), ("--save",),
     "Outputs to write, comma-separated: labels,color,overlay,confidence,json,regions,polygons,probabilities,bias.",
     _OUTPUT_PANEL),
    ("label_format", LabelFormat, LabelFormat(_DEFAULT.label_format), ("--label-format",),
     "Label map format: png, tif (GeoTIFF for a georeferenced input), zarr (OME-Zarr), or auto: "
     "GeoTIFF for a georeferenced input, else PNG.", _OUTPUT_PANEL),
    ("confidence_format", ConfidenceFormat, ConfidenceFormat(_DEFAULT.confidence_format), ("--confidence-format",),
     "File format of the confidence map and the probabilities.", _OUTPUT_PANEL),
    ("max_pixels", int, _DEFAULT.max_pixels, ("--max-pixels",), "Refuse images with more pixels than this.", _OUTPUT_PANEL),
    ("n_jobs", Optional[int], _DEFAULT.n_jobs, ("--threads",), "Threads for the EM kernels (default: all cores).", _OUTPUT_PANEL),
    ("max_memory", Optional[str], _DEFAULT.max_memory, ("--max-memory",),
     "Memory budget per image, e.g. 2G; larger images are labelled in row bands without post-processing "
     "(default: half the RAM, shared by the workers).", _OUTPUT_PANEL),
]
_FLAG_OF = {name: flags[-1].split("/")[0] for name, _, _, flags, _, _ in _CONFIG_OPTIONS}


def build_config(**values: Any) -> SegmentConfig:
    """A SegmentConfig from CLI option values; a bad value is a usage error naming the option."""
    values = {k: v.value if isinstance(v, enum.Enum) else v for k, v in values.items()}
    components = values["n_components"]
    if components != AUTO:
        try:
            values["n_components"] = int(components)
        except ValueError:
            raise typer.BadParameter(f"must be an integer or 'auto'; got {components!r}", param_hint="'-k' / '--components'") from None
    try:
        return SegmentConfig(**values)
    except ValueError as exc:
        field = str(exc).split(" ", 1)[0]
        raise typer.BadParameter(str(exc), param_hint=f"'{_FLAG_OF.get(field, field)}'") from None


class Settings:
    """The settings the options give for images (regions mode unless ``--mode``) and for volumes (classes
    mode unless ``--mode``), each built on first use: a value that only one of them refuses (``--save bias``
    in regions mode, ``--merge-cost 1`` in classes mode) stops only the inputs that need it."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.volume = bool(values["volume"])

    @functools.cached_property
    def images(self) -> SegmentConfig:
        return build_config(**{**self.values, "mode": self.values["mode"] or _DEFAULT.mode})

    @functools.cached_property
    def volumes(self) -> SegmentConfig:
        given = [name for name, value in self.values.items() if value is not None]
        return build_config(**{**self.values, "mode": self.values["mode"] or "classes", **volume_defaults(given)})

    def for_path(self, path: Path) -> SegmentConfig:
        """The settings of the input ``path``: a volume's or an image's."""
        from segment.segment_file import is_volume_file

        return self.volumes if is_volume_file(path, self.volume) else self.images


def with_config_options(command):
    """Add every SegmentConfig option to a Typer command, passed in as ``config``.

    A command that takes ``settings`` instead gets a :class:`Settings`, for
    inputs that may be images or volumes.
    """
    signature = inspect.signature(command, eval_str=True)
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=Annotated[annotation, typer.Option(*flags, help=help_text, rich_help_panel=panel)],
        )
        for name, annotation, default, flags, help_text, panel in _CONFIG_OPTIONS
    ]
    own = [p for p in signature.parameters.values() if p.name not in ("config", "settings")]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name, *_ in _CONFIG_OPTIONS}
        if "settings" in signature.parameters:
            return command(settings=Settings(values), **kwargs)
        return command(config=build_config(**{**values, "mode": values["mode"] or _DEFAULT.mode}), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=own + extra)
    wrapper.__annotations__ = {}  # Typer reads the signature above instead
    del wrapper.__wrapped__
    return wrapper


app = typer.Typer(
    name="segment",
    help="Segment images with Gaussian mixture models fitted by fast EM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"segment {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Segment images with Gaussian mixture models fitted by fast EM."""


def report_error(message: str) -> None:
    """One line on stderr: ``error: <file>: <cause>``."""
    typer.echo(f"error: {message}", err=True)


_MODEL_OPTION = typer.Option(
    "--model",
    exists=True,
    dir_okay=False,
    help="Label with this model (from 'segment fit') instead of fitting one per image, so a label id "
    "is the same class in every image.",
    rich_help_panel=_MODEL_PANEL,
)


def _load_model(path: Path | None):
    """The model in ``path`` (None for None); a wrong or corrupt file is a usage error naming it."""
    if path is None:
        return None
    from segment.gmm import Mixture

    try:
        return Mixture.load(path)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc).splitlines()[0], param_hint="'--model'") from None


@app.command("image")
@with_config_options
def image_command(
    inputs: Annotated[list[Path], typer.Argument(help="Image files to segment.", show_default=False)],
    outdir: Annotated[Path, typer.Option("-o", "--output", help="Output directory (created if missing).")],
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors.")] = False,
    model: Annotated[Optional[Path], _MODEL_OPTION] = None,
    mask: Annotated[
        Optional[Path],
        typer.Option(
            "--mask", exists=True, dir_okay=False, rich_help_panel=_IMAGE_PANEL,
            help="An image of the same size: pixels where it is 0 take no part and get label 0.",
        ),
    ] = None,
    settings: Settings = None,
) -> None:
    """Segment one or more images; write label map, pictures and a JSON summary per image.

    Each page of a multi-page TIFF gives its own outputs (name_p001, ...).
    A NIfTI volume (.nii, .nii.gz), or a TIFF stack with --volume, is
    segmented in 3D in classes mode; its labels are written in its format.

    Exit code 0 when every image succeeded, 1 when any failed, 2 on a usage error.
    """
    from segment import preload

    preload.start()
    from segment.segment_file import file_pages, is_volume_file, segment_file

    stems = [path.name.split(".")[0] if is_volume_file(path, settings.volume) else path.stem for path in inputs]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        raise typer.BadParameter(f"several inputs are named {clashes[0]!r}; their outputs would collide", param_hint="INPUTS")
    from segment import precompile

    shared = _load_model(model)
    failures: list[ExitCode] = []
    done = 0
    images = [path for path in inputs if not is_volume_file(path, settings.volume)]
    with (
        precompile.region_kernels_in_background(settings.images.mode) if images else contextlib.nullcontext(),
        _stopped_cleanly(lambda: f"{done} of {len(inputs)} file(s) done; run again to segment the rest"),
    ):
        for path in inputs:
            config = settings.for_path(path)
            for page, stem in file_pages(path, settings.volume):
                with _reported_errors(path, failures):
                    result = segment_file(path, outdir, config, model=shared, page=page, stem=stem, mask=mask)
                    if not quiet:
                        how = ", in row bands" if result.tiled else ""
                        typer.echo(f"{path}: {result.n_labels} labels, {result.seconds:.2f} s{how} -> {outdir}/{stem}_*")
            done += 1
    if failures:
        raise typer.Exit(max(failures))


@contextlib.contextmanager
def _stopped_cleanly(what_is_left):
    """Ctrl-C or SIGTERM within the block: the work under way is abandoned (each output is written whole or
    not at all), one line says ``what_is_left()``, and the exit code is 128 + the signal."""
    from segment.batch.signals import signal_of, stop_signals

    with stop_signals() as request:
        try:
            yield
            request.check()
        except KeyboardInterrupt as exc:
            signum = signal_of(exc)
        except Exception:
            if request.signum is None:
                raise
            signum = request.signum  # the signal came out of a compiled kernel as another error
        else:
            return
    report_error(f"interrupted by {signal.Signals(signum).name}; {what_is_left()}")
    raise typer.Exit(128 + signum)


@contextlib.contextmanager
def _reported_errors(path: Path, failures: list[ExitCode]):
    """Turn what a user can cause while processing ``path`` into one stderr line.

    Warnings become ``warning:`` lines; an input problem records a failure
    (exit code 1). Programming errors still propagate.
    """
    from segment.io import SegmentError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (SegmentError, ValueError, OSError, MemoryError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            report_error(message if message.startswith(str(path)) else f"{path}: {message}")
            failures.append(ExitCode.FAILED)
    for warning in caught:
        typer.echo(f"warning: {path}: {warning.message}", err=True)


class Executor(str, enum.Enum):
    """Where the images of a batch are processed."""

    local = "local"
    dask = "dask"


_PatternsOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--pattern",
        help="File name glob, repeatable, case-insensitive (e.g. --pattern '*.tif'); "
        "default: every image type the loader reads.",
        show_default=False,
    ),
]
_RecursiveOption = Annotated[bool, typer.Option("--recursive", help="Include sub-folders.")]


@app.command("batch")
@with_config_options
def batch_command(
    indir: Annotated[Path, typer.Argument(help="Folder of images.", show_default=False)],
    outdir: Annotated[
        Path, typer.Option("-o", "--output", help="Output folder (created if missing); mirrors the input tree.")
    ],
    recursive: _RecursiveOption = False,
    patterns: _PatternsOption = None,
    workers: Annotated[
        Optional[int],
        typer.Option("--workers", min=1, help="Images processed at once (processes); default: the machine's cores.", show_default=False),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Redo images whose outputs are already complete and up to date.")
    ] = False,
    model: Annotated[Optional[Path], _MODEL_OPTION] = None,
    executor: Annotated[
        Executor, typer.Option("--executor", help="Run on local processes, or on a Dask cluster (needs the extra segment\\[dask]).")
    ] = Executor.local,
    scheduler: Annotated[
        Optional[str],
        typer.Option(
            "--scheduler",
            help="Address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); without it --executor dask "
            "starts a local cluster of --workers processes.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        Optional[float],
        typer.Option(
            "--timeout", min=0.001, metavar="SECONDS",
            help="Stop an image that takes longer than this (a hung decoder, a pathological picture): it is "
            "reported failed and its worker process replaced; the batch goes on.", show_default=False,
        ),
    ] = None,
    check_content: Annotated[
        bool,
        typer.Option(
            "--check-content",
            help="Decide whether an input changed by its content (SHA-256) alone, never by its size and "
            "modification time: for filesystems whose times cannot be trusted.",
        ),
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or table; print only errors.")] = False,
    settings: Settings = None,
) -> None:
    """Segment every image of a folder (tree): resumable, parallel, on Dask if asked.

    Outputs go to OUTDIR in the same sub-folders as their inputs; each page of a
    multi-page TIFF gives its own (name_p001, ...). An image whose outputs are
    complete, newer than the input and made with the same settings and model is
    skipped, so an interrupted run can simply be started again. Volumes (.nii,
    .nii.gz; TIFF stacks with --volume) are segmented in 3D. A failing image
    never stops the batch: OUTDIR/summary.json and summary.csv list every image
    (status, seconds, components, pixels, error) and OUTDIR/index.html shows
    them all. One run at a time may write to OUTDIR; a second is refused.

    Exit codes: 0 every image done or already up to date; 1 some images failed,
    or OUTDIR is unusable or in use; 2 usage error; 130 interrupted by Ctrl-C,
    143 by SIGTERM (the summary covers what finished).
    """
    from segment.batch import BatchError, find_images, run_batch
    from segment.progress import make_progress
    from segment.segment_file import is_volume_file

    if scheduler and executor != Executor.dask:
        raise typer.BadParameter("needs --executor dask", param_hint="'--scheduler'")
    if not indir.is_dir():
        raise typer.BadParameter(f"{indir}: not a folder", param_hint="INDIR")
    shared = _load_model(model)
    found = find_images(indir, patterns=patterns, recursive=recursive)
    volumes = [is_volume_file(path, settings.volume) for path in found]
    config = settings.volumes if volumes and all(volumes) else settings.images  # what summary.json records
    volume_config = settings.volumes if any(volumes) else None
    progress = make_progress(quiet)

    def show(record) -> None:
        where = record.input if record.page is None else f"{record.input} [page {record.page + 1}]"
        if record.status == "failed":
            progress.write(f"error: {where}: {record.error}")
        for message in record.warnings:
            progress.write(f"warning: {where}: {message}")

    try:
        result = run_batch(
            indir,
            outdir,
            config,
            model=shared,
            patterns=patterns,
            recursive=recursive,
            workers=workers,
            executor=executor.value,
            scheduler=scheduler,
            overwrite=overwrite,
            progress=progress,
            on_record=show,
            timeout=timeout,
            trust_times=not check_content,
            volume_config=volume_config,
        )
    except BatchError as exc:
        report_error(str(exc))
        raise typer.Exit(ExitCode.FAILED) from None
    if not quiet:
        _print_batch_table(result, outdir)
    if result.interrupted:
        name = signal.Signals(result.stop_signal).name
        report_error(f"interrupted by {name}; {outdir}/summary.csv lists what finished; run again to finish the rest")
        raise typer.Exit(128 + result.stop_signal)
    if result.failed:
        raise typer.Exit(ExitCode.FAILED)


def _print_batch_table(result, outdir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = result.counts
    done = counts["done"]
    table = Table()
    table.add_column("status")
    table.add_column("images", justify="right")
    for status in ("done", "skipped", "failed", "interrupted"):
        if counts[status] or status != "interrupted":
            table.add_row(status, str(counts[status]))
    table.add_row("total", str(counts["total"]), style="bold")
    console = Console()
    console.print(table)
    rate = f", {done / result.seconds:.2f} images/s" if done and result.seconds > 0 else ""
    console.print(f"{result.seconds:.1f} s{rate}; summary: {result.summary_paths.get('csv', '')}; "
                  f"contact sheet: {result.summary_paths.get('html', '')}", highlight=False, soft_wrap=True, markup=False)


@app.command("fit")
@with_config_options
def fit_command(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and folders to sample pixels from.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model file to write (.npz).")],
    recursive: _RecursiveOption = False,
    patterns: _PatternsOption = None,
    all_pixels: Annotated[
        bool,
        typer.Option(
            "--all-pixels",
            help="Then run exact EM over every pixel of every image, one image at a time (memory does not grow "
            "with the collection).",
        ),
    ] = False,
    executor: Annotated[
        Executor, typer.Option("--executor", help="With --all-pixels: E-step here, or on Dask workers next to the images.")
    ] = Executor.local,
    scheduler: Annotated[
        Optional[str],
        typer.Option("--scheduler", help="Address of a running Dask scheduler (default: a local cluster).", show_default=False),
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option("--workers", min=1, help="Processes of the local Dask cluster; default: the machine's cores.", show_default=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors.")] = False,
    config: SegmentConfig = _DEFAULT,
) -> None:
    """Fit one mixture on pixels sampled from many images, for labels that mean the same class everywhere.

    --fit-sample is the total number of pixels, shared equally by the images
    (every page of a multi-page TIFF counts as an image). Label with the model
    with --model on 'segment image' or 'segment batch': label 3 is then the same
    class in every image. Use --position-weight 0 for classes defined by colour
    alone, wherever they lie in the image. --all-pixels continues from the
    sample's fit with exact EM over every pixel (one pass over the images per
    iteration); with --executor dask the images are read on the workers and
    only the sufficient statistics travel.

    Exit codes: 0 fitted on every input; 1 some inputs could not be read (the
    model is fitted on the others) or none could; 2 usage error; 130 or 143
    stopped by Ctrl-C or SIGTERM (no model written).
    """
    from segment.batch import BatchError
    from segment.batch.executors import available_cores, dask_client
    from segment.fit_collection import fit_shared_model
    from segment.progress import make_progress

    if executor == Executor.dask and not all_pixels:
        raise typer.BadParameter("needs --all-pixels (the sample is fitted here)", param_hint="'--executor dask'")
    if scheduler and executor != Executor.dask:
        raise typer.BadParameter("needs --executor dask", param_hint="'--scheduler'")
    try:
        with _stopped_cleanly(lambda: "no model written; run again"), contextlib.ExitStack() as stack:
            client = None
            if executor == Executor.dask:
                client = stack.enter_context(dask_client(scheduler, workers or available_cores()))
            result = fit_shared_model(
                inputs, config, patterns=patterns, recursive=recursive, progress=make_progress(quiet),
                all_pixels=all_pixels, client=client,
            )
    except BatchError as exc:
        report_error(str(exc))
        raise typer.Exit(ExitCode.USAGE) from None
    for name, cause in result.failed:
        report_error(f"{name}: {cause}")
    if result.model is None:
        report_error("no image could be read; no model written")
        raise typer.Exit(ExitCode.FAILED)
    try:
        result.model.save(output)
    except OSError as exc:
        report_error(f"{output}: cannot write ({exc.strerror or exc})")
        raise typer.Exit(ExitCode.FAILED) from None
    if not quiet:
        passes = f" ({result.passes} EM passes)" if result.passes else ""
        typer.echo(
            f"{output}: {result.model.n_components} components fitted on {result.pixels} pixels "
            f"from {result.images} image(s){passes}"
        )
    if result.failed:
        raise typer.Exit(ExitCode.FAILED)


class PredictionKind(str, enum.Enum):
    """What the files given to ``segment evaluate`` are."""

    auto = "auto"
    labels = "labels"
    images = "images"


@app.command("evaluate")
@with_config_options
def evaluate_command(
    predictions: Annotated[
        list[Path],
        typer.Argument(help="Label images (*_labels.png, 16-bit PNGs, .npy) or images to segment with the "
                       "options below; folders are expanded.", show_default=False),
    ],
    truth: Annotated[
        Path,
        typer.Option("--truth", help="Folder of ground truths named like the predictions: BSDS500 .mat files, "
                     "label images, or folders of label images (one per annotation)."),
    ],
    kind: Annotated[
        PredictionKind,
        typer.Option("--kind", help="What the inputs are; 'auto' treats *_labels.*, .npy and 16-bit single-channel "
                     "images as label images and segments the others."),
    ] = PredictionKind.auto,
    json_path: Annotated[
        Optional[Path], typer.Option("--json", help="Write the summary and per-image scores to this JSON file.")
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print only the summary line and errors.")] = False,
    boundary: Annotated[
        bool, typer.Option("--boundary", help="Also run the BSDS500 boundary benchmark (precision, recall, F; slower).")
    ] = False,
    with_hierarchy: Annotated[
        bool, typer.Option("--hierarchy", help="Also score the merge hierarchy of segmented images (ODS and OIS).")
    ] = False,
    n_scales: Annotated[
        int, typer.Option("--scales", min=1, help="Number of scales k/(n+1) at which hierarchies are cut.")
    ] = 9,
    config: SegmentConfig = _DEFAULT,
) -> None:
    """Score segmentations against human ones: BSDS500 PRI, VoI and Segmentation Covering.

    Hierarchies (*_ucm2.png from --save hierarchy, or with --hierarchy) are cut
    at --scales scales and get ODS (one scale for all images) and OIS (the best
    scale per image) figures; --boundary adds the boundary F-measure (and AP
    for hierarchies).

    Prints one line per image and the dataset figures: mean Probabilistic Rand
    Index (higher is better), mean Variation of Information in bits (lower is
    better), Covering pooled over all images (higher is better) and the mean
    number of segments. A label image is scored as given, so a label in several
    disconnected places is one segment; images are segmented with the options
    (the default relabels into connected regions).

    Exit codes: 0 every input scored; 1 some could not be (one line each); 2 usage error.
    """
    import json

    from segment.boundary_metrics import benchmark_thresholds
    from segment.evaluate import HierarchyResult, evaluate_files, pipeline_segmenter

    if not truth.is_dir():
        report_error(f"{truth}: ground-truth folder not found")
        raise typer.Exit(ExitCode.USAGE)

    def show(result) -> None:
        if not quiet and isinstance(result, HierarchyResult):
            typer.echo(f"{result.name}: hierarchy, {len(result.scales)} scales")
        elif not quiet:
            s = result.scores
            typer.echo(f"{result.name}: PRI {s.pri:.3f}  VoI {s.voi:.3f}  Covering {s.covering:.3f}  {s.n_segments} segments")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluation = evaluate_files(
            predictions, truth, pipeline_segmenter(config, with_hierarchy=with_hierarchy), kind=kind.value,
            boundary=boundary, scales=benchmark_thresholds(n_scales),
            on_result=show, on_failure=lambda path, message: report_error(message),
        )
    for message in sorted({str(w.message) for w in caught}):
        typer.echo(f"warning: {message}", err=True)
    summary = evaluation.summary
    if summary is not None:
        timing = evaluation.seconds_per_image
        typer.echo(
            f"{summary.n_images} image{'s' if summary.n_images != 1 else ''}: PRI {summary.pri:.4f}  VoI {summary.voi:.4f}  Covering {summary.covering:.4f}  "
            f"{summary.n_segments:.1f} segments" + (f"  {timing:.3f} s/image" if timing is not None else "")
        )
    _print_benchmark_lines(evaluation)
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(evaluation.to_dict(), indent=1))
        except OSError as exc:
            report_error(f"{json_path}: cannot write ({exc.strerror or exc})")
            raise typer.Exit(ExitCode.FAILED) from None
    if evaluation.failures or (summary is None and not evaluation.hierarchies):
        if summary is None and not evaluation.failures:
            report_error("no input to score")
        raise typer.Exit(ExitCode.FAILED)


@app.command("cut")
def cut_command(
    hierarchy_path: Annotated[
        Path, typer.Argument(help="A saved hierarchy: *_ucm2.png (from --save hierarchy) or a ucm2 .npy.", show_default=False)
    ],
    scale: Annotated[
        float, typer.Option("--scale", help="Level in [0, 1]: boundaries at or below it are removed (0.5 = merge cost 1).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Label map to write (.png or .tif).")],
) -> None:
    """Cut a saved region hierarchy at one scale and write its label map (regions 1..N), without refitting."""
    from segment import io
    from segment.evaluate import load_ucm2
    from segment.hierarchy import cut_ucm2

    if not 0.0 <= scale <= 1.0:
        report_error(f"--scale must be in [0, 1]; got {scale}")
        raise typer.Exit(ExitCode.USAGE)
    try:
        labels = cut_ucm2(load_ucm2(hierarchy_path), scale)
        io.write_label_map(output, labels, protect=(hierarchy_path,))
    except ValueError as exc:
        report_error(str(exc))
        raise typer.Exit(ExitCode.FAILED) from None
    except io.SegmentError as exc:
        report_error(str(exc))
        raise typer.Exit(ExitCode.FAILED) from None
    typer.echo(f"{output}: {int(labels.max())} regions at scale {scale:g}")


def _print_benchmark_lines(evaluation) -> None:
    """The boundary figures of the label maps and the ODS / OIS figures of the hierarchies, when computed."""
    if (b := evaluation.boundary_summary) is not None:
        typer.echo(f"boundaries: F {b.ods_f:.4f}  precision {b.ods_precision:.4f}  recall {b.ods_recall:.4f}")
    if (r := evaluation.scale_summary) is not None:
        typer.echo(
            f"hierarchy: PRI ODS {r.pri_ods:.4f} (scale {r.pri_ods_scale:.2f}) OIS {r.pri_ois:.4f}  "
            f"VoI ODS {r.voi_ods:.4f} (scale {r.voi_ods_scale:.2f}) OIS {r.voi_ois:.4f}  "
            f"Covering ODS {r.covering_ods:.4f} (scale {r.covering_ods_scale:.2f}) OIS {r.covering_ois:.4f}"
        )
    if (h := evaluation.hierarchy_boundary_summary) is not None:
        typer.echo(f"hierarchy boundaries: F ODS {h.ods_f:.4f} (scale {h.ods_threshold:.2f}) OIS {h.ois_f:.4f}  AP {h.ap:.4f}")


def run() -> None:
    """Run the ``segment`` command line: the console script and ``python -m segment``."""
    try:
        app(prog_name="segment")
    finally:
        # The process is about to end: freezing the heap spares the
        # interpreter's shutdown a garbage collection of Numba's compiler state
        # and its LLVM handles, which took 0.4-0.7 s of every CLI call.
        gc.freeze()
