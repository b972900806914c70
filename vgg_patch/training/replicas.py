"""Collective all-reduce and broadcast between the worker processes of a cluster.

The graph-mode primitives behind synchronous data parallelism without a
parameter server: every worker holds its own copy of the variables, sums (or
averages) its gradients with the others' through TensorFlow's collective ops
(``CollectiveReduceV2``, ring all-reduce over the gRPC runtime of
``tf.distribute.Server``), and receives the chief's variable values by a
collective broadcast when it (re)starts.

Many small tensors cost many round trips; :class:`Collectives` packs the
tensors of one dtype into a single flat vector, so one gradient all-reduce is
one collective per dtype whatever the number of variables.

Every collective op takes a ``timeout`` (seconds): a peer missing for longer
fails the step with ``tf.errors.DeadlineExceededError`` instead of hanging.
After a failed collective TensorFlow aborts the process's collective executor
(every later collective in that process fails), so the process has to end;
see docs/distributed.md.

Needs the server and the session built with :func:`collective_config`.
"""
import collections


def collective_config(leader, device_filter=None, base=None):
    """A ``ConfigProto`` for collectives: give it to the ``Server`` AND the ``Session``.

    Args:
      leader: the task that resolves collective groups, e.g.
        ``'/job:worker/replica:0/task:0'``.
      device_filter: this task (``'/job:worker/task:1'``): the session then
        touches no other task's server, so a dead peer cannot stall it.
      base: a ``ConfigProto`` to start from (copied).

    Returns:
      A ``tf.compat.v1.ConfigProto``.
    """
    import tensorflow as tf
    config = tf.compat.v1.ConfigProto()
    if base is not None:
        config.CopyFrom(base)
    config.experimental.collective_group_leader = leader
    if device_filter:
        del config.device_filters[:]
        config.device_filters.append(device_filter)
    return config


def _pack(tensors):
    """``{dtype: (flat vector, [(index, shape, size)])}`` of the tensors, per dtype."""
    import tensorflow as tf
    groups = collections.OrderedDict()
    for i, t in enumerate(tensors):
        t = tf.convert_to_tensor(t)  # IndexedSlices -> dense
        groups.setdefault(t.dtype.base_dtype, []).append((i, t))
    packed = collections.OrderedDict()
    for dtype, items in groups.items():
        flat = [tf.reshape(t, [-1]) for _, t in items]
        vector = flat[0] if len(flat) == 1 else tf.concat(flat, axis=0)
        packed[dtype] = (vector, [(i, tf.shape(t), tf.size(t)) for i, t in items],
                         [t.shape for _, t in items])
    return packed


def _unpack(count, packed, vectors):
    """The tensors of ``_pack``'s layout, cut back out of the reduced ``vectors``."""
    import tensorflow as tf
    out = [None] * count
    for dtype, vector in vectors.items():
        _, layout, static_shapes = packed[dtype]
        sizes = [size for _, _, size in layout]
        pieces = ([vector] if len(sizes) == 1
                  else tf.split(vector, tf.stack(sizes), num=len(sizes)))
        for (i, shape, _), piece, static in zip(layout, pieces, static_shapes):
            piece = tf.reshape(piece, shape)
            piece.set_shape(static)
            out[i] = piece
    return out


# The gradient name of collectives whose gradient is a custom_gradient's.
_FORWARD_ONLY = "VggPatchForwardOnlyCollective"


def _register_forward_only():
    """Registers ``_FORWARD_ONLY`` (no gradient to any input) once."""
    import tensorflow as tf
    from tensorflow.python.framework import ops
    try:
        ops.gradient_registry.lookup(_FORWARD_ONLY)
    except LookupError:
        tf.RegisterGradient(_FORWARD_ONLY)(lambda op, *grads: [None] * len(op.inputs))


class Collectives:
    """Collective ops of one group of processes, with fresh instance keys.

    Every process of the group must create the same collectives in the same
    order (the same graph-building code does): the instance keys are taken
    from a counter, and processes match collectives by key.

    Args:
      group_size: processes in the group (the cluster's workers).
      group_key: the group's key (same in every process).
      timeout: seconds a collective waits for a missing peer before failing
        with ``DeadlineExceededError`` (0: forever).
      first_instance_key: the first instance key.
    """

    def __init__(self, group_size, group_key=1, timeout=0.0, first_instance_key=1):
        if int(group_size) < 1:
            raise ValueError("group_size must be >= 1, got %r" % (group_size,))
        self.group_size, self.group_key = int(group_size), int(group_key)
        self.timeout = float(timeout)
        self._next_key = int(first_instance_key)

    def _instance_key(self):
        key, self._next_key = self._next_key, self._next_key + 1
        return key

    def _reduce(self, vector, key, mean):
        """One ``CollectiveReduceV2`` of ``vector`` with instance ``key``."""
        import tensorflow as tf
        return tf.raw_ops.CollectiveReduceV2(
            input=vector, group_size=self.group_size, group_key=self.group_key,
            instance_key=key, ordering_token=[], merge_op="Add",
            final_op="Div" if mean else "Id", communication_hint="auto",
            timeout_seconds=self.timeout)

    def all_reduce(self, tensors, mean=True, pack=True):
        """The element-wise sum (or mean) of ``tensors`` over the group.

        Args:
          tensors: a list of tensors (None entries pass through as None).
          mean: divide the sum by the group size.
          pack: one collective per dtype over all of ``tensors`` (fewest round
            trips: small tensors); False: one collective per tensor, so each
            goes out as soon as it exists and the exchange overlaps the rest
            of the backward pass (large gradients; see docs/distributed.md).

        Returns:
          The reduced tensors, same order, shapes and dtypes.
        """
        import tensorflow as tf
        if not pack:
            return [None if t is None else self.all_reduce([t], mean)[0] for t in tensors]
        present = [i for i, t in enumerate(tensors) if t is not None]
        packed = _pack([tensors[i] for i in present])
        reduced = collections.OrderedDict()
        for dtype, (vector, _, _) in packed.items():
            reduced[dtype] = self._reduce(vector, self._instance_key(), mean)
        out = [None] * len(tensors)
        for i, value in zip(present, _unpack(len(present), packed, reduced)):
            out[i] = value
        return out

    def weighted_sum(self, vector, weight):
        """The sum of ``vector`` over the group, differentiable (one collective each way).

        The gradient suits a loss that the group weights by ``weight``: each
        process's gradients are multiplied by its ``weight`` (its image
        count), summed, and divided by the sum of the weights, as the
        trainer does. Then the true gradient reaching this process's
        ``vector`` is the weighted sum of every process's upstream gradient,
        divided by this process's own weight (which the trainer multiplies
        back in): ``sum_q(weight_q * dy_q) / weight``. With equal weights
        that is the plain sum of the ``dy``. See :mod:`vgg_patch.training.sync_bn`.

        The forward collective is built inside a function (a call op): a
        session run that fetches a tensor depending on it only through an
        untaken TF1 ``cond`` branch (the trainer's validation) then holds no
        collective node, which would advance this process's collective step
        sequence alone and mismatch the next runs' step ids across workers.
        A collective inside a function (this one, or any in a TF2 ``cond``
        branch) gets its executor from the run's top-level collectives, so
        a run that executes it must hold one too: the trainer's training
        step does (the gradients' all-reduce, the backward collective).

        Args:
          vector: a float tensor (one collective, so keep it small).
          weight: this process's weight, a positive float scalar tensor.

        Returns:
          The summed tensor.
        """
        import tensorflow as tf
        _register_forward_only()
        key = self._instance_key()

        def forward(value):
            # The gradient is weighted_sum's own (below), none through here:
            # a TF2 cond branch exposes its intermediates to differentiation.
            with tf.compat.v1.get_default_graph().gradient_override_map(
                    {"CollectiveReduceV2": _FORWARD_ONLY}):
                return self._reduce(value, key, mean=False)

        @tf.custom_gradient
        def weighted_sum(value):
            total = tf.function(forward, autograph=False)(value)

            def grad(upstream):
                return self.all_reduce([upstream * weight], mean=False)[0] / weight
            return total, grad
        return weighted_sum(vector)

    def broadcast(self, variables, is_source):
        """An op giving every process the source's values of ``variables``.

        Args:
          variables: the variables (same list, same order, in every process).
          is_source: True in exactly one process (the chief), which sends.

        Returns:
          An op that assigns the received values (a no-op assignment in the
          source) when run in every process at once.
        """
        import tensorflow as tf
        packed = _pack([v.read_value() for v in variables])
        received = collections.OrderedDict()
        for dtype, (vector, _, _) in packed.items():
            key = self._instance_key()
            common = dict(group_size=self.group_size, group_key=self.group_key,
                          instance_key=key, communication_hint="auto",
                          timeout_seconds=self.timeout)
            if is_source:
                received[dtype] = tf.raw_ops.CollectiveBcastSendV2(input=vector, **common)
            else:
                received[dtype] = tf.raw_ops.CollectiveBcastRecvV2(
                    shape=tf.shape(vector), T=dtype, **common)
        values = _unpack(len(variables), packed, received)
        return tf.group(*[v.assign(x) for v, x in zip(variables, values)],
                        name="broadcast_from_chief")
