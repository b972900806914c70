"""tensorflow-vgg's VGG19, with a CBAM block after pool5, in graph mode.

One class merges tensorflow-vgg's ``vgg19.Vgg19`` and
``vgg19_trainable.Vgg19`` (https://github.com/machrisaa/tensorflow-vgg): the
same layer list, attribute names, variable names, preprocessing and
``var_dict``/``save_npy``/``get_var_count``, plus the VGG tutorial's patch
``attention_feature = convolutional_block_attention_module(self.pool5, index=0)``
feeding fc6. The layer table (shapes, parameter count) is
:mod:`vgg_patch.layout`'s.

Variables: one factory (``Vgg19._model_variable``) makes every conv, fc and
CBAM variable, so ``slim.get_model_variables()`` lists the whole network.

Weights: ``sess.run(tf.compat.v1.global_variables_initializer())`` alone gives
the network the file's weights, and no weight enters the GraphDef: each
variable's initializer reads its one array from the ``.npy`` when it runs
(:mod:`vgg_patch.initializers`; the file is parsed safely and lazily by
:mod:`vgg_patch.weights`). Consequences:

* the GraphDef holds only a py-func token per variable, so a GraphDef or
  MetaGraph exported to another process cannot re-run those initializers:
  save a checkpoint (``tf.compat.v1.train.Saver``) or ``save_npy`` instead;
* the ``.npy`` must stay in place, unchanged, until the initializer has run
  (a changed or removed file is detected: the initializer then fails with a
  ``tf.errors.OpError`` whose message holds the ``WeightsFileError``).

NOTE (departures from tensorflow-vgg, each deliberate):

* ``dropout`` is the fraction of units DROPPED (TF2's ``rate``, Keras'
  ``Dropout(rate)``). tensorflow-vgg passed it to TF1's ``tf.nn.dropout`` as
  ``keep_prob``; at the default 0.5 both readings agree. Code that passed
  ``dropout=k`` to tensorflow-vgg meaning keep_prob ``k`` should pass ``1 - k``.
* ``trainable=False`` makes non-trainable variables rather than
  ``tf.constant`` weights (constants put the whole file into the GraphDef).
* Layers without weights in a file start from He-uniform weights (fan_in;
  fc8, the logits, at unit scale; conv1_1 also scaled for its 0-255 input)
  and zero biases, not tensorflow-vgg's N(0, 0.001), with which a 19-layer
  stack trained from scratch gets vanishing activations.
* A second ``build()`` on one instance is refused: make another ``Vgg19``.
"""
import logging
import os

import numpy as np
import tensorflow as tf

from vgg_patch import _shapes
from vgg_patch import checks
from vgg_patch import initializers
from vgg_patch import layout
from vgg_patch import weights as weights_lib
from vgg_patch import winograd as winograd_lib
from vgg_patch.layout import (ATTENTION_BLOCK_KEY, CONV_LAYERS, FC_LAYERS, VGG_MEAN,
                              WINOGRAD_LAYERS)

tf1 = tf.compat.v1
logger = logging.getLogger(__name__)

__all__ = ['Vgg19', 'VGG_MEAN', 'CONV_LAYERS', 'FC_LAYERS', 'ATTENTION_BLOCK_KEY',
           'WINOGRAD_LAYERS']


#: Collections of every variable of the network, as slim's ``model_variable``
#: gives them (TRAINABLE_VARIABLES is added when ``trainable``).
_MODEL_COLLECTIONS = (tf1.GraphKeys.GLOBAL_VARIABLES, tf1.GraphKeys.MODEL_VARIABLES)


class Vgg19:
    """VGG19 (tensorflow-vgg's class) with an optional CBAM block after pool5.

    Usage, exactly as with tensorflow-vgg::

      images = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3])
      train_mode = tf.compat.v1.placeholder(tf.bool, [])
      vgg = Vgg19('vgg19.npy')
      vgg.build(images, train_mode)
      sess.run(tf.compat.v1.global_variables_initializer())  # the file's weights

    Dropout after relu6 and relu7 runs only when training: when ``train_mode``
    is fed True, or, with ``train_mode=None``, whenever ``trainable`` is True
    (tensorflow-vgg's rule: a trainable network built without ``train_mode``
    always drops; pass ``train_mode`` to infer with it).

    The CBAM block's spatial gate has a batch norm. Its ``is_training`` is
    ``train_mode`` (or, when ``train_mode`` is None, ``trainable``). In training
    mode it normalises with batch statistics and puts its moving-average
    updates into ``tf.compat.v1.GraphKeys.UPDATE_OPS``: run them with each
    training step (``slim.learning.create_train_op`` does; with a bare
    optimizer, wrap ``minimize`` in ``tf.control_dependencies(
    tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS))``),
    otherwise inference (``train_mode`` False) uses moving averages that never
    moved.

    Args:
      vgg19_npy_path: path of a weights ``.npy`` (tensorflow-vgg's original
        ``vgg19.npy``, tensorflow-vgg's ``save_npy`` output, or this class's
        ``save_npy`` output), or None for fresh random weights everywhere.
        The file is parsed (safely, without reading the weights) here; the
        weights are read when the variables are initialised.
      trainable: True makes trainable variables; False a frozen network
        (non-trainable variables, CBAM's batch norm in inference mode unless
        ``train_mode`` says otherwise).
      dropout: fraction of units dropped after relu6 and relu7 while
        training, in [0, 1) (0 disables dropout). See the module NOTE on
        tensorflow-vgg's keep_prob.
      attention: 'cbam' (the tutorial's CBAM after pool5: hidden width
        0.5 * 512, scope 'cbam_0') or None (the unpatched network, computing
        exactly what tensorflow-vgg computes).
      num_classes: width of fc8. Other than 1000, fc8 starts fresh (for
        retraining on new classes) unless the file's fc8 already has this
        width.
      include_top: False stops after the attention block (no fc6-fc8), and
        any input size works.
      winograd: True computes the 3x3 convolutions of stages 3-5
        (:data:`WINOGRAD_LAYERS`) by Winograd F(2x2, 3x3)
        (:mod:`vgg_patch.winograd`) instead of ``tf.nn.conv2d``: faster on
        CPU in float32 (docs/benchmarks.md); a collection of conv layer
        names, on those only (:func:`vgg_patch.fastpath.winograd_layers`);
        False (default): tensorflow-vgg's direct network. Same variables
        and files; outputs equal the direct convolution's up to float32
        round-off, not bit for bit. On GPU, cuDNN picks its own algorithms:
        leave it False there. A layer whose input has no static height or
        width (``include_top=False`` on an unsized placeholder) stays
        direct, with a warning.

    Attributes:
      conv1_1 ... conv5_4, pool1 ... pool5: the layers' outputs (after build).
      attention_output: CBAM's output, fc6's input (``pool5`` itself when
        ``attention`` is None).
      attention_map: CBAM's spatial sigmoid map [N, h, w, 1], or None.
      fc6, relu6, fc7, relu7, fc8, prob: the classifier (None without
        ``include_top``); ``fc8`` is the logits, relu6/relu7 are after dropout.
      var_dict: ``{(layer, 0 | 1): variable}`` as in tensorflow-vgg, plus
        ``{('cbam_0', name within the block): variable}`` for every CBAM
        variable (moving statistics included).

    Raises:
      ValueError: an argument is out of range, or the file does not fit the
        network (:class:`vgg_patch.weights.WeightsFileError`, a ValueError:
        missing, corrupt, unsafe, missing layers, wrong shapes).
      TypeError: an argument has the wrong type.
    """

    def __init__(self, vgg19_npy_path=None, trainable=True, dropout=0.5,
                 attention='cbam', num_classes=1000, include_top=True, winograd=False):
        checks.check_args(vgg19_npy_path, trainable, dropout, attention, num_classes,
                          include_top, winograd)
        self.vgg19_npy_path = (None if vgg19_npy_path is None
                               else os.fspath(vgg19_npy_path))
        self.trainable = trainable
        self.dropout = float(dropout)
        self.attention = attention
        self.num_classes = int(num_classes)
        self.include_top = include_top
        self.winograd, self.winograd_layers = winograd, checks.check_winograd(winograd)
        self.var_dict = {}
        self._weights = (None if vgg19_npy_path is None
                         else weights_lib.WeightsFile(self.vgg19_npy_path))
        self._fc8_from_file = self._weights is None or initializers.check_file(
            self._weights, include_top, self.num_classes, attention)
        self._built = False
        self.conv1_1 = self.conv1_2 = self.pool1 = None
        self.conv2_1 = self.conv2_2 = self.pool2 = None
        self.conv3_1 = self.conv3_2 = self.conv3_3 = self.conv3_4 = self.pool3 = None
        self.conv4_1 = self.conv4_2 = self.conv4_3 = self.conv4_4 = self.pool4 = None
        self.conv5_1 = self.conv5_2 = self.conv5_3 = self.conv5_4 = self.pool5 = None
        self.attention_output = None
        self.attention_map = None
        self.fc6 = self.relu6 = self.fc7 = self.relu7 = self.fc8 = self.prob = None

    def build(self, rgb, train_mode=None):  # long: VGG19's layer list, written out
        """Builds the network on ``rgb``.

        Preprocessing is tensorflow-vgg's: ``rgb * 255``, RGB -> BGR, minus
        :data:`VGG_MEAN`.

        Args:
          rgb: float32 tensor [batch, height, width, 3], RGB in [0, 1]. With
            ``include_top`` the fully connected layers need the height and
            width the weights were made for (224 x 224 for ImageNet files;
            any static size with fresh weights).
          train_mode: None, a Python bool, or a scalar bool tensor (e.g. a
            placeholder): switches dropout and CBAM's batch norm to training.

        Raises:
          ValueError: build was already called; rgb is not [N, H, W, 3]; the
            input size does not fit fc6.
          TypeError: rgb is not float32; train_mode is not None, a bool or a
            bool tensor.
        """
        if self._built:
            raise ValueError('Vgg19.build was already called on this instance; '
                             'create another Vgg19 for another network')
        rgb = checks.check_rgb(rgb)
        is_training = checks.check_train_mode(train_mode, self.trainable)
        in_size = initializers.fc6_input_size(self._weights, rgb) if self.include_top else None

        rgb_scaled = rgb * 255.0
        red, green, blue = tf.split(axis=3, num_or_size_splits=3, value=rgb_scaled)
        bgr = tf.concat(axis=3, values=[blue - VGG_MEAN[0],
                                        green - VGG_MEAN[1],
                                        red - VGG_MEAN[2]])

        self.conv1_1 = self.conv_layer(bgr, 3, 64, 'conv1_1')
        self.conv1_2 = self.conv_layer(self.conv1_1, 64, 64, 'conv1_2')
        self.pool1 = self.max_pool(self.conv1_2, 'pool1')

        self.conv2_1 = self.conv_layer(self.pool1, 64, 128, 'conv2_1')
        self.conv2_2 = self.conv_layer(self.conv2_1, 128, 128, 'conv2_2')
        self.pool2 = self.max_pool(self.conv2_2, 'pool2')

        self.conv3_1 = self.conv_layer(self.pool2, 128, 256, 'conv3_1')
        self.conv3_2 = self.conv_layer(self.conv3_1, 256, 256, 'conv3_2')
        self.conv3_3 = self.conv_layer(self.conv3_2, 256, 256, 'conv3_3')
        self.conv3_4 = self.conv_layer(self.conv3_3, 256, 256, 'conv3_4')
        self.pool3 = self.max_pool(self.conv3_4, 'pool3')

        self.conv4_1 = self.conv_layer(self.pool3, 256, 512, 'conv4_1')
        self.conv4_2 = self.conv_layer(self.conv4_1, 512, 512, 'conv4_2')
        self.conv4_3 = self.conv_layer(self.conv4_2, 512, 512, 'conv4_3')
        self.conv4_4 = self.conv_layer(self.conv4_3, 512, 512, 'conv4_4')
        self.pool4 = self.max_pool(self.conv4_4, 'pool4')

        self.conv5_1 = self.conv_layer(self.pool4, 512, 512, 'conv5_1')
        self.conv5_2 = self.conv_layer(self.conv5_1, 512, 512, 'conv5_2')
        self.conv5_3 = self.conv_layer(self.conv5_2, 512, 512, 'conv5_3')
        self.conv5_4 = self.conv_layer(self.conv5_3, 512, 512, 'conv5_4')
        self.pool5 = self.max_pool(self.conv5_4, 'pool5')

        if self.attention == 'cbam':
            self.attention_output = self._cbam(self.pool5, is_training)
        else:
            self.attention_output = self.pool5
        self._built = True
        if not self.include_top:
            return

        width = layout.FC_WIDTH
        self.fc6 = self.fc_layer(self.attention_output, in_size, width, 'fc6')
        self.relu6 = self._dropout(tf.nn.relu(self.fc6), train_mode)
        self.fc7 = self.fc_layer(self.relu6, width, width, 'fc7')
        self.relu7 = self._dropout(tf.nn.relu(self.fc7), train_mode)
        self.fc8 = self.fc_layer(self.relu7, width, self.num_classes, 'fc8')
        self.prob = tf.nn.softmax(self.fc8, name='prob')

    def _dropout(self, x, train_mode):
        """Dropout while training; ``train_mode`` may be a bool tensor.

        A bool tensor selects with ``tf.where``, not ``tf.cond``: a TF2 cond
        (``StatelessIf``) cannot be differentiated once a session has run it
        (its gradient needs intermediate outputs the op that ran does not
        have), and tensorflow-vgg's usage runs ``prob`` first and builds the
        optimizer afterwards. Both sides are computed (a random mask over
        [N, 4096], small next to fc6); the selected side is passed on
        bit for bit and the other gets a zero gradient.
        """
        if self.dropout == 0.0:
            return x
        if train_mode is None:
            return tf.nn.dropout(x, rate=self.dropout) if self.trainable else x
        if isinstance(train_mode, bool):
            return tf.nn.dropout(x, rate=self.dropout) if train_mode else x
        return tf.where(train_mode, tf.nn.dropout(x, rate=self.dropout), x)

    def _cbam(self, x, is_training):
        """The tutorial's CBAM block on ``x``; its variables come from :meth:`_model_variable`."""
        # Imported here: slim_attention pulls in tf_slim, which attention=None never needs.
        import slim_attention  # pylint: disable=import-outside-toplevel

        outer = tf1.get_variable_scope().name
        block_names = []

        def block_getter(getter, name, *args, **kwargs):
            rel = name[len(outer) + 1:] if outer else name
            rel = rel.split('/', 1)[1] if '/' in rel else rel
            block_names.append(rel)
            return self._model_variable(
                (ATTENTION_BLOCK_KEY, rel), _shapes.dims(kwargs.get('shape')),
                kwargs['initializer'],
                lambda initializer: getter(name, *args, **dict(kwargs, initializer=initializer)))

        maps_before = len(tf1.get_collection(slim_attention.ATTENTION_MAPS))
        # use_resource: under disable_v2_behavior() the block's model_variables
        # would otherwise be RefVariables, unlike the rest of the network.
        with tf1.variable_scope(tf1.get_variable_scope(), custom_getter=block_getter,
                                use_resource=True):
            out = slim_attention.convolutional_block_attention_module(
                x, index=0, inner_units_ratio=0.5, is_training=is_training,
                trainable=self.trainable)
        maps = tf1.get_collection(slim_attention.ATTENTION_MAPS)
        self.attention_map = maps[-1] if len(maps) > maps_before else None
        if self._weights is not None:
            initializers.check_block_used(self._weights, ATTENTION_BLOCK_KEY, block_names)
        return out

    def max_pool(self, bottom, name):
        """2x2 max pooling, stride 2, 'SAME' (tensorflow-vgg's)."""
        return tf.nn.max_pool2d(bottom, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1],
                                padding='SAME', name=name)

    def conv_layer(self, bottom, in_channels, out_channels, name):
        """3x3 convolution, bias, relu, in variable scope ``name``.

        The convolutions in ``self.winograd_layers`` (see ``winograd``) use
        :func:`vgg_patch.winograd.conv2d_3x3`.
        """
        with tf1.variable_scope(name):
            filt, conv_biases = self.get_conv_var(3, in_channels, out_channels, name)
            use_winograd = name in self.winograd_layers
            if use_winograd and not winograd_lib.supports(bottom, filt):
                logger.warning('%s: input %s has no static height and width; '
                               'computing it with tf.nn.conv2d, not Winograd',
                               name, _shapes.text(bottom))
                use_winograd = False
            if use_winograd:
                conv = winograd_lib.conv2d_3x3(bottom, filt)
            else:
                conv = tf.nn.conv2d(bottom, filt, [1, 1, 1, 1], padding='SAME')
            bias = tf.nn.bias_add(conv, conv_biases)
            return tf.nn.relu(bias)

    def fc_layer(self, bottom, in_size, out_size, name):
        """Flatten (NHWC order, as tensorflow-vgg), matmul, bias."""
        with tf1.variable_scope(name):
            weights, biases = self.get_fc_var(in_size, out_size, name)
            x = tf.reshape(bottom, [-1, in_size])
            return tf.nn.bias_add(tf.matmul(x, weights), biases)

    def get_conv_var(self, filter_size, in_channels, out_channels, name):
        """Returns ``name/name_filters`` and ``name/name_biases``."""
        filters = self.get_var([filter_size, filter_size, in_channels, out_channels],
                               name, 0, name + '_filters')
        biases = self.get_var([out_channels], name, 1, name + '_biases')
        return filters, biases

    def get_fc_var(self, in_size, out_size, name):
        """Returns ``name/name_weights`` and ``name/name_biases``."""
        weights = self.get_var([in_size, out_size], name, 0, name + '_weights')
        biases = self.get_var([out_size], name, 1, name + '_biases')
        return weights, biases

    def get_var(self, shape, name, idx, var_name):
        """Variable ``var_name`` of layer ``name`` (``idx`` 0: weights, 1: biases)."""

        def create(initializer):
            # tf.compat.v1.Variable, not get_variable: names follow the name scope as
            # in tensorflow-vgg (a second network in one graph gets conv1_1_1/...).
            # use_resource in both behaviours: a RefVariable's initializer would copy
            # the buffer read from the file (twice the memory); a resource one adopts it.
            return tf1.Variable(lambda: initializer(shape, dtype=tf.float32), name=var_name,
                                trainable=self.trainable, dtype=tf.float32, use_resource=True,
                                collections=list(_MODEL_COLLECTIONS))

        return self._model_variable((name, idx), shape,
                                    initializers.fresh_initializer(name, idx), create)

    def _model_variable(self, key, shape, fresh, create):
        """The network's one variable factory: every conv, fc and CBAM variable.

        Picks the initializer (the file's array for ``key`` if the file has
        it, else ``fresh``), has ``create(initializer)`` make the variable
        (a ``tf.compat.v1.Variable`` in :meth:`get_var`, slim's
        ``model_variable`` through CBAM's custom getter) and records it in
        ``var_dict[key]``. Every variable is a resource variable in
        GLOBAL_VARIABLES and MODEL_VARIABLES (and TRAINABLE_VARIABLES when
        ``trainable``). ``key`` is ``(layer, 0 | 1)``, or ``('cbam_0', name
        within the block)``: the variable's key in the file and var_dict.
        """
        from_file = self._weights is not None and (key[0] != 'fc8' or self._fc8_from_file)
        var = create(initializers.initializer(self._weights if from_file else None,
                                              key, shape, fresh))
        self.var_dict[key] = var
        return var

    def get_var_count(self):
        """Number of values in all variables of ``var_dict`` (CBAM's included)."""
        count = 0
        for var in self.var_dict.values():
            count += int(np.prod(var.shape.as_list()))
        return count

    def save_npy(self, sess, npy_path='./vgg19-save.npy'):
        """Writes the variables to ``npy_path``; :class:`Vgg19` loads them back.

        Layout: ``{layer: {0: weights, 1: biases}}`` (tensorflow-vgg's
        ``save_npy`` layout) plus, with CBAM, ``{'cbam_0': {variable name
        within the block: array}}`` holding every CBAM variable, batch-norm
        moving statistics included. ``np.load(npy_path, allow_pickle=True)
        .item()`` reads it too. Variables are fetched and written one at a
        time, to a temporary file renamed onto ``npy_path`` at the end.

        Args:
          sess: a session in which the variables are initialised.
          npy_path: destination (written as given; no '.npy' is appended).

        Returns:
          ``npy_path``.

        Raises:
          ValueError: build was not called, or ``npy_path`` is the file this
            network initialises from (its initializer reads it lazily).
          TypeError: sess is not a session.
        """
        if not self._built:
            raise ValueError('Vgg19.save_npy: call build() first')
        if not isinstance(sess, tf1.Session) and not hasattr(sess, 'run'):
            raise TypeError('sess must be a tf.compat.v1.Session, got %r' % (sess,))
        npy_path = os.fspath(npy_path)
        if (self.vgg19_npy_path is not None and os.path.exists(npy_path)
                and os.path.exists(self.vgg19_npy_path)
                and os.path.samefile(npy_path, self.vgg19_npy_path)):
            raise ValueError(
                'Vgg19.save_npy: refusing to overwrite %s, the file this network reads its '
                'initial weights from; choose another path' % npy_path)
        tree = {}
        for (name, idx), var in self.var_dict.items():
            tree.setdefault(name, {})[idx] = (lambda v=var: sess.run(v))
        weights_lib.save_weights(npy_path, tree)
        logger.info('saved %d variables to %s', len(self.var_dict), npy_path)
        return npy_path
