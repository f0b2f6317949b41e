"""Reading real files written by real writers: TIFF in its forms, raster formats, GIF, PDF, EXIF, GeoTIFF."""

import cv2
import numpy as np
import pytest
import rasterio
import tifffile
from PIL import Image, ImageOps
from affine import Affine

from segment.io import ImageReadError, count_pages, load_pages, read_image, read_mask, valid_pixels


def _scene(height=32, width=40, channels=3, dtype=np.uint8):
    """Smooth gradients plus a bright square: survives lossy codecs, any misplacement shows."""
    rows, cols = np.mgrid[:height, :width]
    bands = [(rows * 4 + cols * 2 + 60 * c) % 200 for c in range(channels)]
    image = np.stack(bands, axis=-1).astype(np.float64)
    image[8:20, 10:26] = 240
    image = image * (np.iinfo(dtype).max / 255 if np.dtype(dtype).kind == "u" else 1)
    return image.astype(dtype)


LOSSY_ERROR = 8  # mean absolute error a lossy codec may leave on _scene()
LOSSLESS = ["none", "lzw", "zlib", "packbits", "zstd", "lzma", "jpeg2000", "jpegxr", "png", "webp"]


@pytest.mark.parametrize("compression", [*LOSSLESS, "jpeg"])
@pytest.mark.parametrize("tiled", [False, True])
def test_tiff_compressions_striped_and_tiled(tmp_path, compression, tiled):
    image = _scene()
    path = tmp_path / "c.tif"
    tifffile.imwrite(
        path, image, photometric="rgb", compression=None if compression == "none" else compression,
        compressionargs={"level": 95} if compression == "jpeg" else None, tile=(16, 16) if tiled else None, rowsperstrip=8,
    )
    loaded, info = read_image(path)
    assert loaded.shape == image.shape and loaded.dtype == np.uint8
    error = np.abs(loaded.astype(int) - image).mean()
    assert error == 0 if compression in LOSSLESS else error < LOSSY_ERROR
    assert info.format.startswith("TIFF/") and info.band_names == ("red", "green", "blue")


@pytest.mark.parametrize("writer", ["opencv", "pillow-lzw", "pillow-jpeg", "pillow-deflate", "pillow-packbits"])
def test_tiffs_of_everyday_writers(tmp_path, writer):
    image = _scene()
    path = tmp_path / "w.tif"
    if writer == "opencv":
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))  # OpenCV's default: LZW
    else:
        compression = {"lzw": "tiff_lzw", "jpeg": "jpeg", "deflate": "tiff_adobe_deflate", "packbits": "packbits"}
        Image.fromarray(image).save(path, compression=compression[writer.split("-")[1]])
    loaded, info = read_image(path)
    assert np.abs(loaded.astype(int) - image).mean() < (4 if writer == "pillow-jpeg" else 1e-9)
    assert info.format == {"opencv": "TIFF/LZW", "pillow-jpeg": "TIFF/JPEG", "pillow-lzw": "TIFF/LZW",
                           "pillow-deflate": "TIFF/Deflate", "pillow-packbits": "TIFF/PackBits"}[writer]


@pytest.mark.parametrize("compression", ["group3", "group4", "raw"])
def test_bilevel_tiff_ccitt_and_uncompressed(tmp_path, compression):
    bits = _scene(40, 48, 1)[:, :, 0] > 100
    Image.fromarray(bits).save(tmp_path / "b.tif", compression=compression, dpi=(300, 300))
    loaded, info = read_image(tmp_path / "b.tif")
    assert loaded.dtype == np.uint8 and np.array_equal(loaded, bits * np.uint8(255))
    assert info.dpi == pytest.approx((300, 300))
    assert compression == "raw" or info.format == f"TIFF/CCITT Group {compression[-1]}"


def test_min_is_white_is_shown_as_viewers_show_it(tmp_path):
    stored = np.array([[0, 1000], [60000, 65535]], np.uint16)
    tifffile.imwrite(tmp_path / "w.tif", stored, photometric="miniswhite")
    assert np.array_equal(read_image(tmp_path / "w.tif")[0], 65535 - stored)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.uint32, np.int32, np.float32, np.float64])
def test_integer_and_float_samples_keep_their_values(tmp_path, dtype):
    image = (np.arange(48).reshape(6, 8) * 3 - (20 if np.dtype(dtype).kind != "u" else 0)).astype(dtype)
    tifffile.imwrite(tmp_path / "d.tif", image, compression="zlib")
    loaded, _ = read_image(tmp_path / "d.tif")
    assert loaded.dtype == (dtype if dtype in (np.uint8, np.uint16) else np.float32)
    assert np.array_equal(loaded, image.astype(loaded.dtype))


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_five_band_sixteen_bit_bigtiff(tmp_path, planar):
    bands = _scene(24, 30, 5, np.uint16)
    data = bands if planar == "contig" else np.moveaxis(bands, 2, 0)
    tifffile.imwrite(tmp_path / "m.tif", data, photometric="minisblack", planarconfig=planar, bigtiff=True,
                     compression="lzw", metadata=None)
    loaded, info = read_image(tmp_path / "m.tif")
    assert loaded.dtype == np.uint16 and np.array_equal(loaded, bands)
    assert info.format == "BigTIFF/LZW" and count_pages(tmp_path / "m.tif") == 1


def test_multi_page_tiff_pages_in_file_order(tmp_path):
    pages = [_scene(32, 40), _scene(16, 20)[:, :, ::-1], _scene(32, 40)[::-1]]
    Image.fromarray(pages[0]).save(
        tmp_path / "p.tif", save_all=True, append_images=[Image.fromarray(np.ascontiguousarray(p)) for p in pages[1:]],
        compression="tiff_lzw",
    )
    assert count_pages(tmp_path / "p.tif") == 3
    for expected, loaded in zip(pages, load_pages(tmp_path / "p.tif"), strict=True):
        assert np.array_equal(loaded, expected)
    with pytest.raises(ImageReadError, match="page 4 does not exist"):
        read_image(tmp_path / "p.tif", 3)


def test_pyramidal_ome_tiff_levels_channels_and_pixel_size(tmp_path):
    stack = np.moveaxis(_scene(64, 64, 4, np.uint16), 2, 0)
    with tifffile.TiffWriter(tmp_path / "s.ome.tif") as tif:
        tif.write(stack, subifds=2, tile=(32, 32), compression="zlib", metadata={
            "axes": "CYX", "Channel": {"Name": ["DAPI", "GFP", "RFP", "Cy5"]},
            "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25})
        tif.write(stack[:, ::2, ::2], subfiletype=1, tile=(32, 32), compression="zlib")
        tif.write(stack[:, ::4, ::4], subfiletype=1, tile=(16, 16), compression="zlib")
    path = tmp_path / "s.ome.tif"
    assert count_pages(path) == 1
    full, info = read_image(path)
    assert np.array_equal(full, np.moveaxis(stack, 0, 2))
    assert info.band_names == ("DAPI", "GFP", "RFP", "Cy5") and info.n_levels == 3
    assert info.pixel_size == (0.25, 0.25) and info.pixel_unit == "micrometer"
    level, level_info = read_image(path, level=2)
    assert np.array_equal(level, np.moveaxis(stack[:, ::4, ::4], 0, 2))
    assert level_info.pixel_size == (1.0, 1.0) and level_info.level == 2
    with pytest.raises(ImageReadError, match="level 3 does not exist"):
        read_image(path, level=3)


def test_svs_full_resolution_by_default_and_levels(tmp_path):
    base = _scene(64, 96)
    description = "Aperio Image Library v12.0.0\n96x64 [0,0 96x64] (32x32) JPEG Q=90|AppMag = 20|MPP = 0.5"
    with tifffile.TiffWriter(tmp_path / "slide.svs") as tif:
        tif.write(base, tile=(32, 32), photometric="rgb", description=description, metadata=None)
        tif.write(base[::4, ::4], photometric="rgb", description="Aperio thumbnail", metadata=None)
        tif.write(base[::2, ::2], tile=(16, 16), photometric="rgb", description="Aperio level", metadata=None)
        tif.write(base[:8, :8], subfiletype=1, photometric="rgb", description="Aperio label", metadata=None)
        tif.write(base[:8, :16], subfiletype=9, photometric="rgb", description="Aperio macro", metadata=None)
    path = tmp_path / "slide.svs"
    assert count_pages(path) == 1
    full, info = read_image(path)
    assert np.array_equal(full, base) and info.format.startswith("SVS/")
    half, half_info = read_image(path, level=1)
    assert np.array_equal(half, base[::2, ::2]) and half_info.n_levels == 2


def test_imagej_hyperstack_pages_over_z_channels_stacked(tmp_path):
    stack = np.arange(2 * 3 * 8 * 10, dtype=np.uint16).reshape(2, 3, 8, 10)
    tifffile.imwrite(tmp_path / "h.tif", stack, imagej=True, metadata={"axes": "ZCYX"})
    assert count_pages(tmp_path / "h.tif") == 2
    assert np.array_equal(read_image(tmp_path / "h.tif", 1)[0], np.moveaxis(stack[1], 0, 2))


def test_unsupported_compression_is_named_in_one_line(tmp_path):
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, _scene())
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["Compression"].overwrite(32909)  # PixarLog: no decoder
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: PixarLog compressed TIFF is not supported"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".ppm", ".jp2"])
def test_raster_formats(tmp_path, suffix):
    image = _scene()
    cv2.imwrite(str(tmp_path / f"r{suffix}"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    loaded, info = read_image(tmp_path / f"r{suffix}")
    assert loaded.shape == image.shape
    assert np.abs(loaded.astype(int) - image).mean() < (LOSSY_ERROR if suffix in (".jpg", ".webp", ".jp2") else 1e-9)
    assert info.format == {".png": "PNG", ".jpg": "JPEG", ".webp": "WebP", ".bmp": "BMP", ".ppm": "PNM",
                           ".jp2": "JPEG 2000"}[suffix]


def test_sixteen_bit_png_and_jpeg2000_keep_depth(tmp_path):
    image = _scene(dtype=np.uint16)
    for suffix in (".png", ".jp2"):
        cv2.imwrite(str(tmp_path / f"s{suffix}"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        loaded, _ = read_image(tmp_path / f"s{suffix}")
        error = np.abs(loaded.astype(int) - image).mean()
        assert loaded.dtype == np.uint16 and (error == 0 if suffix == ".png" else error < LOSSY_ERROR * 257)


def test_gif_every_frame_is_a_page(tmp_path):
    frames = [np.full((12, 16, 3), (200 * (i == 0), 200 * (i == 1), 200 * (i == 2)), np.uint8) for i in range(3)]
    Image.fromarray(frames[0]).save(tmp_path / "a.gif", save_all=True, append_images=[Image.fromarray(f) for f in frames[1:]])
    assert count_pages(tmp_path / "a.gif") == 3
    for i, expected in enumerate(frames):
        loaded, info = read_image(tmp_path / "a.gif", i)
        assert np.abs(loaded.astype(int) - expected).max() <= 2 and (info.page, info.n_pages, info.format) == (i, 3, "GIF")


def test_pdf_pages_rendered_at_requested_dpi(tmp_path):
    red, blue = np.zeros((72, 144, 3), np.uint8), np.zeros((36, 72, 3), np.uint8)
    red[..., 0], blue[..., 2] = 220, 220
    Image.fromarray(red).save(tmp_path / "d.pdf", save_all=True, append_images=[Image.fromarray(blue)], resolution=72)
    path = tmp_path / "d.pdf"
    assert count_pages(path) == 2
    page, info = read_image(path)
    assert page.shape == (300, 600, 3) and info.dpi == pytest.approx((300, 300)) and info.format == "PDF"
    assert np.abs(page[150, 300].astype(int) - (220, 0, 0)).max() < 8
    second, _ = read_image(path, 1, dpi=144)
    assert second.shape == (72, 144, 3) and np.abs(second[36, 72].astype(int) - (0, 0, 220)).max() < 8
    with pytest.raises(ImageReadError, match="at 300 dpi is 600x300 = 180000 pixels, above the limit"):
        read_image(path, max_pixels=100_000)
    assert read_image(path, dpi=100, max_pixels=100_000)[0].shape == (100, 200, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_as_viewers_do(tmp_path, orientation):
    image = _scene(20, 30)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(tmp_path / "o.png", exif=exif)
    loaded, info = read_image(tmp_path / "o.png")
    with Image.open(tmp_path / "o.png") as stored:
        upright = np.asarray(ImageOps.exif_transpose(stored))
    assert np.array_equal(loaded, upright) and info.orientation == orientation


def test_jpeg_with_orientation_6_is_upright(tmp_path):
    upright = _scene(20, 30)
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # camera held sideways
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "photo.jpg", exif=exif, quality=98, dpi=(200, 100))
    loaded, info = read_image(tmp_path / "photo.jpg")
    assert loaded.shape == upright.shape and np.abs(loaded.astype(int) - upright).mean() < LOSSY_ERROR
    assert info.orientation == 6 and info.dpi == pytest.approx((100, 200))


def _geotiff(path, data, nodata=-9999.0, descriptions=None, **profile):
    count = 1 if data.ndim == 2 else data.shape[0]
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[-2], width=data.shape[-1], count=count,
                       dtype=data.dtype, crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4100000),
                       nodata=nodata, **profile) as dst:
        dst.write(data if data.ndim == 3 else data[np.newaxis])
        for band, text in enumerate(descriptions or (), start=1):
            dst.set_band_description(band, text)


def test_geotiff_crs_transform_nodata_and_band_names(tmp_path):
    data = np.moveaxis(_scene(20, 30, 4, np.uint16), 2, 0).astype(np.int16)
    data[:, :3, :3] = -9999
    _geotiff(tmp_path / "g.tif", data, descriptions=["blue", "green", "red", "nir"], compress="deflate", tiled=True,
             blockxsize=16, blockysize=16)
    image, info = read_image(tmp_path / "g.tif")
    assert image.shape == (20, 30, 4) and np.array_equal(image, np.moveaxis(data, 0, 2).astype(np.float32))
    assert info.georeference.crs == "EPSG:32633"
    with rasterio.open(tmp_path / "g.tif") as src:
        assert info.georeference.transform == tuple(src.transform)[:6]
    assert info.nodata == -9999 and info.band_names == ("blue", "green", "red", "nir")
    assert info.pixel_size == (10, 10) and info.pixel_unit == "meter"
    valid = valid_pixels(image, info.nodata)
    assert not valid[:3, :3].any() and valid.sum() == 20 * 30 - 9


def test_float_geotiff_with_nan_nodata_is_finite(tmp_path):
    data = np.ones((10, 12), np.float32)
    data[2, 3] = np.nan
    _geotiff(tmp_path / "n.tif", data, nodata=np.nan)
    image, info = read_image(tmp_path / "n.tif")
    assert np.isfinite(image).all()
    assert valid_pixels(image, info.nodata).sum() == 119 and not valid_pixels(image, info.nodata)[2, 3]


def test_mask_is_boolean_and_must_match_the_image(tmp_path):
    mask = np.zeros((10, 12), np.uint8)
    mask[2:5, 3:9] = 7
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    assert np.array_equal(read_mask(tmp_path / "m.png", (10, 12, 3)), mask > 0)
    with pytest.raises(ImageReadError, match="mask is 12x10 pixels but the image is 13x10"):
        read_mask(tmp_path / "m.png", (10, 13))


@pytest.mark.parametrize(("fmt", "size"), [("gif", None), ("tif", None)])
def test_pixel_limit_before_decoding(tmp_path, fmt, size):
    Image.fromarray(_scene(50, 60)).save(tmp_path / f"big.{fmt}")
    with pytest.raises(ImageReadError, match="60x50 = 3000 pixels, above the limit of 2999"):
        read_image(tmp_path / f"big.{fmt}", max_pixels=2999)
