"""The built-in demo's data: scikit-learn's handwritten digits as PNG folders."""
import logging
import os

import numpy as np

logger = logging.getLogger("vgg_patch.data")


def write_demo_digits(out_dir, upscale=4):
    """Writes scikit-learn's 8x8 handwritten digits as PNG files, one folder per digit.

    The data (1,797 images, 10 classes) ships inside scikit-learn, so nothing is
    downloaded. Each 8x8 image (values 0..16) is scaled to 0..255 and upscaled
    ``upscale`` times with bilinear filtering, then stored as a grayscale PNG; the
    pipeline turns it into RGB at the model's size. Existing complete output is
    reused.

    Args:
      out_dir: folder to write; gets subfolders ``0`` ... ``9``.
      upscale: integer upscaling factor of the stored PNGs.

    Returns:
      ``out_dir``.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    marker = os.path.join(out_dir, ".complete")
    if os.path.exists(marker):
        return out_dir
    size = 8 * int(upscale)
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        class_dir = os.path.join(out_dir, str(int(target)))
        os.makedirs(class_dir, exist_ok=True)
        array = np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(array).resize((size, size), Image.BILINEAR)
        image.save(os.path.join(class_dir, "digit_%04d.png" % index))
    with open(marker, "w") as f:
        f.write("%d\n" % len(digits.target))
    logger.info("wrote the demo dataset (%d scikit-learn digits, %dx%d PNG) to %s",
                len(digits.target), size, size, out_dir)
    return out_dir
