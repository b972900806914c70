"""vgg_patch: tensorflow-vgg's VGG19 with CBAM after pool5, loading vgg19.npy safely.

* :class:`Vgg19` -- tensorflow-vgg's class (both of its variants in one), with
  the VGG tutorial's CBAM block after pool5 (``attention='cbam'``).
* :mod:`vgg_patch.weights` -- safe, lazy reading of ``vgg19.npy`` files
  (:func:`load_weights` replaces ``np.load(..., allow_pickle=True).item()``)
  and lean writing (:func:`save_weights`); every file problem raises
  :class:`WeightsFileError` (a ValueError).
"""
from vgg_patch.vgg19 import ATTENTION_BLOCK_KEY, CONV_LAYERS, FC_LAYERS, VGG_MEAN, Vgg19
from vgg_patch.weights import (DOWNLOAD_URL, LazyArray, WeightsFile, WeightsFileError,
                               load_weights, read_npy_tree, save_weights)

__all__ = ['Vgg19', 'VGG_MEAN', 'CONV_LAYERS', 'FC_LAYERS', 'ATTENTION_BLOCK_KEY',
           'WeightsFileError', 'WeightsFile', 'LazyArray', 'load_weights', 'save_weights',
           'read_npy_tree', 'DOWNLOAD_URL']
