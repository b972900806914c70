"""Vgg19's argument checks.

Every bad argument of :class:`vgg_patch.Vgg19` and :meth:`vgg_patch.Vgg19.build`
fails here, before any op exists, with a TypeError or ValueError naming the
argument, the value and what was expected.
"""
import os

import numpy as np
import tensorflow as tf

from vgg_patch import _shapes
from vgg_patch import layout

__all__ = ['ATTENTIONS', 'check_args', 'check_rgb', 'check_train_mode', 'check_winograd']

#: The values of Vgg19's ``attention``.
ATTENTIONS = ('cbam', None)


def check_args(vgg19_npy_path, trainable, dropout, attention, num_classes, include_top,
               winograd):
    """Checks :class:`vgg_patch.Vgg19`'s constructor arguments.

    Raises:
      TypeError: an argument has the wrong type.
      ValueError: an argument is out of range.
    """
    if not isinstance(trainable, bool):
        raise TypeError('trainable must be a bool, got %r' % (trainable,))
    if not isinstance(include_top, bool):
        raise TypeError('include_top must be a bool, got %r' % (include_top,))
    check_winograd(winograd)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)):
        raise TypeError('dropout must be a number in [0, 1) (the fraction dropped), '
                        'got %r' % (dropout,))
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError('dropout must be in [0, 1) (the fraction of units dropped), '
                         'got %r' % (dropout,))
    if attention not in ATTENTIONS:
        raise ValueError("attention must be 'cbam' or None, got %r" % (attention,))
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError('num_classes must be a positive int, got %r' % (num_classes,))
    if num_classes < 1:
        raise ValueError('num_classes must be a positive int, got %r' % (num_classes,))
    if vgg19_npy_path is not None and not isinstance(vgg19_npy_path, (str, os.PathLike)):
        raise TypeError('vgg19_npy_path must be a path or None, got %r' % (vgg19_npy_path,))


def check_winograd(winograd):
    """Returns the conv layers Vgg19's ``winograd`` names, as a tuple.

    ``True`` means :data:`vgg_patch.layout.WINOGRAD_LAYERS` (stages 3-5),
    ``False`` none; a list, tuple or set of names of
    :data:`vgg_patch.layout.CONV_LAYERS` means those.

    Raises:
      TypeError: ``winograd`` is neither a bool nor a collection of names.
      ValueError: a name is not one of VGG19's convolutions.
    """
    if isinstance(winograd, bool):
        return layout.WINOGRAD_LAYERS if winograd else ()
    if not isinstance(winograd, (list, tuple, set, frozenset)):
        raise TypeError('winograd must be a bool or a collection of conv layer names '
                        '(e.g. %r), got %r' % (layout.WINOGRAD_LAYERS[:2], winograd))
    names = [name for name, _, _ in layout.CONV_LAYERS]
    unknown = sorted(str(n) for n in winograd if n not in names)
    if unknown:
        raise ValueError('winograd names unknown conv layer(s) %s; VGG19 has %s'
                         % (', '.join(unknown), ', '.join(names)))
    return tuple(name for name in names if name in winograd)


def check_rgb(rgb):
    """Returns ``rgb`` as a float32 tensor [batch, height, width, 3].

    Raises:
      TypeError: rgb is not a float32 tensor (or convertible to one).
      ValueError: rgb's shape is not [batch, height, width, 3].
    """
    if isinstance(rgb, (tf.Variable,)) or not isinstance(rgb, tf.Tensor):
        try:
            rgb = tf.convert_to_tensor(rgb)
        except (TypeError, ValueError) as e:
            raise TypeError('rgb must be a float32 tensor [batch, height, width, 3], '
                            'got %r (%s)' % (type(rgb).__name__, e)) from None
    if rgb.dtype != tf.float32:
        raise TypeError('rgb must be float32 (RGB in [0, 1]), got %s' % rgb.dtype.name)
    shape = _shapes.dims(rgb)
    if shape is not None and (len(shape) != 4 or shape[-1] != 3):
        raise ValueError('rgb must be [batch, height, width, 3], got shape %s'
                         % _shapes.text(rgb))
    if shape is None:
        raise ValueError('rgb must be [batch, height, width, 3] with a known rank, '
                         'got an unknown shape')
    return rgb


def check_train_mode(train_mode, trainable):
    """Returns CBAM's ``is_training``: train_mode itself, or ``trainable``.

    Raises:
      TypeError: train_mode is not None, a bool or a scalar bool tensor.
    """
    if train_mode is None:
        return trainable
    if isinstance(train_mode, bool):
        return train_mode
    if isinstance(train_mode, (tf.Tensor, tf.Variable)):
        if train_mode.dtype != tf.bool or (train_mode.shape.rank not in (0, None)):
            raise TypeError('train_mode must be a scalar bool tensor, got %s %s'
                            % (train_mode.dtype.name, _shapes.text(train_mode)))
        return train_mode
    raise TypeError('train_mode must be None, a bool or a scalar bool tensor, got %r'
                    % (train_mode,))
