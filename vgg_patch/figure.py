"""Pictures of CBAM's spatial attention map that show what the numbers say.

One drawing for both places a user sees the map: the PNG of
``vgg19-cbam-predict --attention-map`` and the ``validation/attention_map``
image the trainer writes to TensorBoard.

CBAM's spatial gate is a sigmoid, so every value lies in [0, 1]; the figure
colours it on that fixed scale (blue 0 - green 0.5 - red 1, "jet"), never
stretched to the map's own minimum and maximum. A map whose values all lie
within :data:`FLAT_SPREAD` of each other is *flat*: it is labelled so, in the
figure and in :func:`describe_map`'s line, and it shows as one colour (CBAM's
spatial batch norm starts with gamma = 0, so an untrained gate is exactly 0.5
everywhere, and a short run moves it by 1e-4 or so). 0.01 is 1 % of the gate's
range: at that spread the features of the most and the least attended
positions are scaled by factors within 2 % of each other (0.505 against
0.495), too little to mean a preference.

Each row of the figure holds, at ``display_size`` pixels each:

* the network's input, untouched;
* the input with the map laid over it at :data:`OVERLAY_ALPHA` (the image
  stays readable) and the map's cells outlined;
* the map alone, one flat-coloured block per cell (no interpolation invents
  detail between pool5 positions), with each value written in its cell for
  maps of up to :data:`MAX_VALUES_SHOWN` x :data:`MAX_VALUES_SHOWN` cells;
* a colour bar from 0 to 1 with ticks, the map's minimum and maximum marked.

Above each row, one or two lines: the title, the map's size and range, and
"flat" where it is.
"""
import collections
import math

import numpy as np

# The gate's own range: the sigmoid's.
GATE_RANGE = (0.0, 1.0)
# Below this spread (max - min, on the 0-1 gate scale) a map is called flat.
FLAT_SPREAD = 0.01
# Maps of at most this many cells per side get their values written in.
MAX_VALUES_SHOWN = 7
# Weight of the heat colours over the image in the overlay panel.
OVERLAY_ALPHA = 0.35
# Colour bar ticks.
BAR_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
FLAT_NOTE = "the spatial gate has not learned a preference yet"
# A 1x1 map (VGG19's pool5 of an input of 32 px or less; a slim network's last
# block at a small input, e.g. inception_v3 at 75 px) has no positions to choose between.
SINGLE_CELL_NOTE = ("one position only (a 1x1 map: the input is too small for this "
                    "network to keep a grid), nothing to prefer")
COLUMN_CAPTIONS = ("input", "input + attention", "attention (sigmoid gate, 0-1 scale)",
                   "gate")

_PAD = 8
_BAR_WIDTH = 16
_BACKGROUND = (255, 255, 255)
_INK = (0, 0, 0)
_GRID = (40, 40, 40)

MapStats = collections.namedtuple("MapStats", ["low", "high", "spread", "flat", "line"])
MapStats.__doc__ = """What :func:`describe_map` found: the map's minimum, maximum,
spread (max - min), whether it is flat, and one line saying so."""

AttentionFigure = collections.namedtuple("AttentionFigure", ["pixels", "texts", "boxes"])
AttentionFigure.__doc__ = """:func:`attention_figure`'s result: ``pixels``, uint8
[height, width, 3]; ``texts``, every string drawn, in drawing order; ``boxes``,
per row a dict from panel (``'image'``, ``'overlay'``, ``'heat'``, ``'bar'``)
to its ``(left, top, right, bottom)`` pixel box, right and bottom exclusive."""


def colorize(values):
    """Maps values in [0, 1] to RGB in [0, 1], blue (0) - green (0.5) - red (1) ("jet").

    Args:
      values: float array of any shape; values outside [0, 1] are clipped.

    Returns:
      float array of shape ``values.shape + (3,)``.
    """
    # float32 constants throughout: NumPy 1.x would compute a 0-d input in
    # float64 (value-based casting) and round some colours one step apart.
    f32 = np.float32
    v = np.clip(np.asarray(values, dtype=f32), f32(0), f32(1))[..., None]
    centers = np.array([3.0, 2.0, 1.0], dtype=f32)
    return np.clip(f32(1.5) - np.abs(f32(4) * v - centers), f32(0), f32(1)).astype(f32)


def colorize_uint8(values):
    """:func:`colorize` as uint8 RGB, the exact colours the figure paints."""
    return (colorize(values) * np.float32(255)).round().astype(np.uint8)


def _as_maps(maps, name="maps"):
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.ndim != 3 or min(maps.shape) < 1:
        raise ValueError("%s must have shape [N, h, w] or [N, h, w, 1] with every size "
                         ">= 1, got shape %s" % (name, tuple(np.shape(maps))))
    if not np.all(np.isfinite(maps)):
        raise ValueError("%s holds NaN or infinite values; CBAM's spatial gate is a "
                         "sigmoid, in [0, 1]" % name)
    low, high = float(maps.min()), float(maps.max())
    if low < GATE_RANGE[0] - 1e-6 or high > GATE_RANGE[1] + 1e-6:
        raise ValueError("%s must lie in [0, 1] (CBAM's spatial gate is a sigmoid), got "
                         "values from %.6g to %.6g" % (name, low, high))
    return maps


def _flat_note(amap):
    return SINGLE_CELL_NOTE if amap.size == 1 else FLAT_NOTE


def _decimals(spread, flat):
    """Decimals that tell a map's values apart: 3, or 5 to 8 for a flat map."""
    if not flat:
        return 3
    if spread <= 0:
        return 5
    return int(min(8, max(5, math.ceil(-math.log10(spread)))))


def _format_values(amap, digits):
    rows = ["  ".join("%.*f" % (digits, v) for v in row) for row in amap]
    return "[" + "; ".join(rows) + "]"


def describe_map(amap, flat_spread=FLAT_SPREAD):
    """Sums up one attention map in numbers and one line of text.

    Args:
      amap: float [h, w] or [h, w, 1], values in [0, 1].
      flat_spread: a map whose max - min is below this is flat.

    Returns:
      A :class:`MapStats`. ``line`` reads e.g. ``attention map 2x2: values
      0.49959 to 0.49963 [0.49959  0.49961; 0.49962  0.49963]; flat: spread 4e-05
      < 0.01; the spatial gate has not learned a preference yet``; the values
      are listed for maps of up to :data:`MAX_VALUES_SHOWN` cells per side.

    Raises:
      ValueError: for a map of another shape or with values outside [0, 1].
    """
    amap = _as_maps(np.asarray(amap)[None], "amap")[0]
    low, high = float(amap.min()), float(amap.max())
    spread = high - low
    flat = spread < flat_spread
    # Enough decimals to tell the values apart (5 for a flat map of an
    # untrained gate, 3 for a trained one).
    digits = _decimals(spread, flat)
    h, w = amap.shape
    if amap.size == 1:
        return MapStats(low, high, spread, flat, "attention map 1x1: value %.5f; %s"
                        % (low, SINGLE_CELL_NOTE))
    line = "attention map %dx%d: values %.*f to %.*f" % (h, w, digits, low, digits, high)
    if max(h, w) <= MAX_VALUES_SHOWN:
        line += " " + _format_values(amap, digits)
    if flat:
        line += "; flat: spread %.2g < %g; %s" % (spread, flat_spread, FLAT_NOTE)
    else:
        line += "; spread %.3f" % spread
    return MapStats(low, high, spread, flat, line)


def describe_maps(maps, flat_spread=FLAT_SPREAD):
    """One line for a batch of attention maps (the trainer's log line).

    Args:
      maps: float [N, h, w, 1] or [N, h, w], values in [0, 1].
      flat_spread: a map whose max - min is below this is flat.

    Returns:
      e.g. ``4 maps 2x2: values 0.49955 to 0.49964, largest spread 6.1e-05; all
      flat (spread < 0.01): the spatial gate has not learned a preference yet``.

    Raises:
      ValueError: for maps of another shape or with values outside [0, 1].
    """
    maps = _as_maps(maps)
    spreads = maps.max(axis=(1, 2)) - maps.min(axis=(1, 2))
    n_flat = int(np.sum(spreads < flat_spread))
    all_flat = n_flat == len(maps)
    digits = _decimals(float(spreads.max()), all_flat)
    line = "%d map%s %dx%d: values %.*f to %.*f, largest spread %s" % (
        len(maps), "s" if len(maps) > 1 else "", maps.shape[1], maps.shape[2], digits,
        maps.min(), digits, maps.max(),
        "%.2g" % spreads.max() if all_flat else "%.3f" % spreads.max())
    if all_flat:
        line += "; %s (spread < %g): %s" % ("all flat" if len(maps) > 1 else "flat",
                                            flat_spread, _flat_note(maps[0]))
    elif n_flat:
        line += "; %d of %d flat (spread < %g)" % (n_flat, len(maps), flat_spread)
    return line


def _font(size):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the bitmap font
        return ImageFont.load_default()


def _text_size(draw, text, font):
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _wrap(draw, text, font, width):
    words, lines, current = text.split(" "), [], ""
    for word in words:
        trial = word if not current else current + " " + word
        if current and _text_size(draw, trial, font)[0] > width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def _cell_index(size, cells):
    """For each of ``size`` pixels, the map cell (of ``cells``) it falls in."""
    return (np.arange(size) * cells) // size


def _cell_edges(size, cells):
    return [(i * size + cells - 1) // cells for i in range(1, cells)]


def _check_figure_args(images, maps, titles, display_size):
    """``(images, maps)`` as float32 arrays; ValueError for malformed arguments."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] < 1:
        raise ValueError("images must have shape [N, H, W, 3] with N >= 1, got shape %s"
                         % (images.shape,))
    maps = _as_maps(maps)
    if maps.shape[0] != images.shape[0]:
        raise ValueError("maps must hold one map per image: %d images, %d maps"
                         % (images.shape[0], maps.shape[0]))
    if titles is not None and len(titles) != images.shape[0]:
        raise ValueError("titles must hold one title per image: %d images, %d titles"
                         % (images.shape[0], len(titles)))
    if int(display_size) < 32:
        raise ValueError("display_size must be >= 32, got %r" % (display_size,))
    return images, maps


def _draw_panels(canvas, draw, columns, top, size, image, amap, stats, font):
    """Draws a row's input, overlay, map and colour bar; returns the strings drawn."""
    from PIL import Image
    x_image, x_overlay, x_heat, bar_x = columns
    h, w = amap.shape
    picture = np.asarray(Image.fromarray(
        (np.clip(image, 0, 1) * 255).round().astype(np.uint8)).resize(
            (size, size), Image.BILINEAR))
    # One block per cell, on the fixed 0-1 scale.
    cells = amap[_cell_index(size, h)][:, _cell_index(size, w)]
    heat = colorize_uint8(cells)
    overlay = ((1.0 - OVERLAY_ALPHA) * picture + OVERLAY_ALPHA * heat).round()
    canvas.paste(Image.fromarray(picture), (x_image, top))
    canvas.paste(Image.fromarray(overlay.astype(np.uint8)), (x_overlay, top))
    canvas.paste(Image.fromarray(heat), (x_heat, top))
    for x0 in (x_overlay, x_heat):  # cell outlines
        for e in _cell_edges(size, h):
            draw.line([(x0, top + e), (x0 + size - 1, top + e)], fill=_GRID)
        for e in _cell_edges(size, w):
            draw.line([(x0 + e, top), (x0 + e, top + size - 1)], fill=_GRID)
    texts = []
    if max(h, w) <= MAX_VALUES_SHOWN:
        texts.extend(_write_values(draw, amap, x_heat, top, size, font, stats.flat))
    texts.extend(_colour_bar(draw, bar_x, top, size, stats, font))
    return texts


def attention_figure(images, maps, titles=None, display_size=224,
                     flat_spread=FLAT_SPREAD):
    """Draws one row per image: input, overlay, the map with its values, colour bar.

    See the module docstring for the layout and the scale.

    Args:
      images: float [N, H, W, 3] in [0, 1] (the network's inputs).
      maps: float [N, h, w, 1] or [N, h, w], CBAM's spatial map, in [0, 1].
      titles: N strings shown above the rows (e.g. file names); default none.
      display_size: side of each panel in pixels (images and maps are resized).
      flat_spread: a map whose max - min is below this is labelled flat.

    Returns:
      An :class:`AttentionFigure`: ``pixels`` uint8 [height, width, 3],
      ``texts`` (the strings drawn) and ``boxes`` (where each panel is).

    Raises:
      ValueError: for mismatched or malformed arguments, or map values outside
        [0, 1].
    """
    from PIL import Image, ImageDraw
    images, maps = _check_figure_args(images, maps, titles, display_size)
    size = int(display_size)
    font = _font(max(10, size // 16))
    small_font = _font(max(9, size // 20))
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_height = _text_size(scratch, "Ag0", font)[1] + 4
    tick_width = max(_text_size(scratch, "%.2g" % t, small_font)[0] for t in BAR_TICKS)
    bar_x = 3 * size + 4 * _PAD
    width = bar_x + _BAR_WIDTH + 6 + tick_width + _PAD
    texts, boxes = [], []

    # Header lines of every row, wrapped to the figure's width.
    headers = []
    for i, amap in enumerate(maps):
        stats = describe_map(amap, flat_spread)
        words = _header(amap, stats, flat_spread)
        title = (str(titles[i]) + ": ") if titles is not None else ""
        headers.append((_wrap(scratch, title + words, font, width - 2 * _PAD), stats))
    row_heights = [len(lines) * line_height + _PAD + size + _PAD for lines, _ in headers]
    caption_height = _text_size(scratch, "Ag0", small_font)[1] + _PAD
    canvas = Image.new("RGB", (width, _PAD + caption_height + sum(row_heights)),
                       _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    columns = (_PAD, size + 2 * _PAD, 2 * size + 3 * _PAD, bar_x)  # image, overlay, heat, bar
    for x, caption in zip(columns, COLUMN_CAPTIONS):
        draw.text((x, _PAD), caption, fill=_INK, font=small_font)
        texts.append(caption)

    y0 = _PAD + caption_height
    for (lines, stats), image, amap, row_height in zip(headers, images, maps, row_heights):
        for k, line in enumerate(lines):
            draw.text((_PAD, y0 + k * line_height), line, fill=_INK, font=font)
            texts.append(line)
        top = y0 + len(lines) * line_height + _PAD // 2
        texts.extend(_draw_panels(canvas, draw, columns, top, size, image, amap, stats,
                                  small_font))
        boxes.append({name: (x, top, x + (size if name != "bar" else _BAR_WIDTH),
                             top + size)
                      for name, x in zip(("image", "overlay", "heat", "bar"), columns)})
        y0 += row_height
    return AttentionFigure(np.asarray(canvas), texts, boxes)


def _header(amap, stats, flat_spread):
    h, w = amap.shape
    if amap.size == 1:
        return "1x1 map, value %.5f: %s" % (stats.low, SINGLE_CELL_NOTE)
    if stats.flat:
        digits = _decimals(stats.spread, True)
        return "%dx%d map, values %.*f to %.*f - FLAT (spread %.2g < %g): %s" % (
            h, w, digits, stats.low, digits, stats.high, stats.spread, flat_spread,
            FLAT_NOTE)
    return "%dx%d map, values %.3f to %.3f (spread %.3f)" % (h, w, stats.low, stats.high,
                                                            stats.spread)


def _write_values(draw, amap, x0, y0, size, font, flat):
    """Writes each value in its cell, with as many decimals as fit (up to 5)."""
    h, w = amap.shape
    cell_w, cell_h = size // w, size // h
    texts = []
    most = _decimals(float(amap.max() - amap.min()), flat)
    for digits in range(most, 1, -1):
        labels = [["%.*f" % (digits, v) for v in row] for row in amap]
        widest = max(_text_size(draw, t, font)[0] for row in labels for t in row)
        if widest <= cell_w - 4:
            break
    else:  # even 2 decimals do not fit: drop the leading zero
        labels = [[t[1:] if t.startswith("0.") else t for t in row] for row in labels]
    for i in range(h):
        for j in range(w):
            text = labels[i][j]
            tw, th = _text_size(draw, text, font)
            r, g, b = (int(c) for c in colorize_uint8(amap[i, j]))
            ink = _INK if 0.299 * r + 0.587 * g + 0.114 * b > 110 else _BACKGROUND
            cx = x0 + (j * size) // w + cell_w // 2
            cy = y0 + (i * size) // h + cell_h // 2
            draw.text((cx - tw // 2, cy - th // 2), text, fill=ink, font=font)
            texts.append(text)
    return texts


def _colour_bar(draw, x0, y0, size, stats, font):
    """A vertical 0 (bottom) to 1 (top) bar with ticks; the map's range marked."""
    def y_of(value):
        return y0 + int(round((1.0 - value) * (size - 1)))
    for k in range(size):
        value = 1.0 - k / float(size - 1)
        draw.line([(x0, y0 + k), (x0 + _BAR_WIDTH - 1, y0 + k)],
                  fill=tuple(int(c) for c in colorize_uint8(value)))
    draw.rectangle([x0 - 1, y0 - 1, x0 + _BAR_WIDTH, y0 + size], outline=_INK)
    texts = []
    for tick in BAR_TICKS:
        y = y_of(tick)
        draw.line([(x0 + _BAR_WIDTH, y), (x0 + _BAR_WIDTH + 3, y)], fill=_INK)
        text = "%.2g" % tick
        _, th = _text_size(draw, text, font)
        ty = min(max(y - th // 2, y0 - 2), y0 + size - th)
        draw.text((x0 + _BAR_WIDTH + 6, ty), text, fill=_INK, font=font)
        texts.append(text)
    # The map's minimum and maximum: black lines across the bar with a white
    # edge, so they show on every colour.
    for value in sorted({stats.low, stats.high}):
        y = y_of(value)
        draw.line([(x0 - 4, y), (x0 + _BAR_WIDTH + 3, y)], fill=_INK, width=3)
        draw.line([(x0 - 4, y), (x0 + _BAR_WIDTH + 3, y)], fill=_BACKGROUND, width=1)
    return texts


def encode_png(pixels):
    """PNG bytes of a uint8 [H, W, 3] array."""
    import io
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
