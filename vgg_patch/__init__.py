"""vgg_patch: tensorflow-vgg's VGG19 with CBAM after pool5, loading vgg19.npy safely.

* :class:`Vgg19` -- tensorflow-vgg's class (both of its variants in one), with
  the VGG tutorial's CBAM block after pool5 (``attention='cbam'``).
* :mod:`vgg_patch.weights` -- safe, lazy reading of ``vgg19.npy`` files
  (:func:`load_weights` replaces ``np.load(..., allow_pickle=True).item()``)
  and lean writing (:func:`save_weights`); every file problem raises
  :class:`WeightsFileError` (a ValueError).
* :mod:`vgg_patch.winograd` -- 3x3 convolutions by Winograd F(2x2, 3x3), which
  ``Vgg19(winograd=True)`` uses in stages 3-5.
* :mod:`vgg_patch.data` -- image folders, the split and the tf.data pipeline.
* :mod:`vgg_patch.training` -- the trainer; :mod:`vgg_patch.cli` -- the
  ``vgg19-cbam-train`` and ``vgg19-cbam-predict`` commands.

The main data path, as the code imports it: ``vgg_patch.cli.train`` ->
``vgg_patch.training`` (``graph`` -> ``network`` -> ``vgg_patch.vgg19`` ->
``vgg_patch.weights``); the commands import ``vgg_patch.vgg19`` by name, never
through this package's lazy names below.
"""
import importlib
import typing

if typing.TYPE_CHECKING:  # what the lazy names below are, for readers and tools
    from vgg_patch.session import session_config  # noqa: F401
    from vgg_patch.vgg19 import (ATTENTION_BLOCK_KEY, CONV_LAYERS, FC_LAYERS,  # noqa: F401
                                 VGG_MEAN, WINOGRAD_LAYERS, Vgg19)
    from vgg_patch.weights import (DOWNLOAD_URL, LazyArray, WeightsFile,  # noqa: F401
                                   WeightsFileError, load_weights, read_npy_tree,
                                   save_weights)

# Where each public name lives. They are imported on first use (PEP 562), so
# that ``import vgg_patch`` -- and so ``vgg19-cbam-train --help`` and ``import
# vgg_patch.weights`` -- does not import TensorFlow before it is needed.
_EXPORTS = {
    'Vgg19': 'vgg_patch.vgg19',
    'VGG_MEAN': 'vgg_patch.vgg19',
    'CONV_LAYERS': 'vgg_patch.vgg19',
    'FC_LAYERS': 'vgg_patch.vgg19',
    'ATTENTION_BLOCK_KEY': 'vgg_patch.vgg19',
    'WINOGRAD_LAYERS': 'vgg_patch.vgg19',
    'WeightsFileError': 'vgg_patch.weights',
    'WeightsFile': 'vgg_patch.weights',
    'LazyArray': 'vgg_patch.weights',
    'load_weights': 'vgg_patch.weights',
    'save_weights': 'vgg_patch.weights',
    'read_npy_tree': 'vgg_patch.weights',
    'DOWNLOAD_URL': 'vgg_patch.weights',
    'session_config': 'vgg_patch.session',
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError('module %r has no attribute %r' % (__name__, name))
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
