"""Keras model -> Nano-ready ONNX graph (opset <= 13, IR 7, dynamic batch, simplest op set).

`onnx_from_keras(model)` runs tf2onnx and then rewrites the graph so that OpenCV 4.1 DNN
(the Jetson's cv2) and TensorRT 8.2 (the Jetson's engine builder) both read it:

* tf2onnx emits Keras' Flatten as a dynamic Shape -> Gather -> Cast -> Slice -> Concat -> Reshape
  chain. The shape is constant apart from the batch, so it becomes one Reshape to ``[-1, K]``.
* tf2onnx keeps the NHWC flatten order of the Dense weights with a Transpose(NCHW -> NHWC)
  just before that flatten. OpenCV DNN got this wrong (0.03-0.07 max probability error vs
  Keras). The Transpose is removed and the next layer's weight rows are permuted to NCHW order
  instead, which is exact (a permutation of the same float32 numbers).
* MatMul (+ Add bias) with constant weights becomes Gemm with ``transB=1`` (OpenCV 4.1.1 misreads
  a Gemm without it), BatchNormalization's Mul/Add after a Dense/Conv is folded into its weights,
  Identity nodes are dropped, unused initializers and opset imports removed.
* Conv with asymmetric pads (Keras "same" with stride 2), which OpenCV 4.1.1 refuses, gets
  symmetric pads and a kernel grown by zero taps (exact).

The result must use only `SIMPLE_OPS`; anything else raises ExportError naming the op, so a
new layer type is noticed on the workstation and not on the device.

`fp16_from_fp32(model)` makes the FP16 twin: float16 weights and compute, float32 input and
output (Cast nodes at the I/O), so the runtime feeds it the same batches.
"""

import json
import logging

import numpy as np

from edge_runtime import manifest as mf

log = logging.getLogger(__name__)

DEFAULT_OPSET = mf.MAX_SUPPORTED_OPSET  # 13: TensorRT 8.2's ONNX parser (see convert/trt82_ops.py)
MIN_OPSET = 11
IR_VERSION = 7  # accepted by TensorRT 8.2's parser and by every onnxruntime since 1.3
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "N"

# Ops that OpenCV 4.1 DNN's ONNX importer and TensorRT 8.2's parser both handle.
SIMPLE_OPS = frozenset(
    [
        "Transpose", "Conv", "Relu", "MaxPool", "AveragePool", "Reshape", "Flatten", "MatMul", "Gemm",
        "Add", "Mul", "Softmax", "BatchNormalization",
    ]
)
# The FP16 twin additionally has Cast at its input and output.
SIMPLE_OPS_FP16 = SIMPLE_OPS | frozenset(["Cast"])

NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


class ExportError(RuntimeError):
    """The Keras model cannot be exported to a Nano-ready graph; the message says why."""


# --------------------------------------------------------------------------
# tf2onnx
# --------------------------------------------------------------------------


def check_opset(opset):
    opset = int(opset)
    if opset > mf.MAX_SUPPORTED_OPSET:
        raise ExportError(
            "opset %d is newer than TensorRT 8.2 on the Jetson Nano parses (<= %d); use --opset %d"
            % (opset, mf.MAX_SUPPORTED_OPSET, mf.MAX_SUPPORTED_OPSET)
        )
    if opset < MIN_OPSET:
        raise ExportError("opset %d is too old for this exporter (needs >= %d); use --opset 13" % (opset, MIN_OPSET))
    return opset


def raw_onnx_from_keras(model, opset=DEFAULT_OPSET):
    """tf2onnx straight from a Keras model: input `image` [N,28,28,1] float32, output `probabilities`.

    tf2onnx.convert.from_keras fails on Keras 3 Sequential models, so the model is wrapped in a
    tf.function with an explicit input signature and converted with from_function.
    """
    import tensorflow as tf
    import tf2onnx

    shape = tuple([None] + [int(d) for d in model.input_shape[1:]])
    spec = tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def probabilities_from_image(image):
        return {OUTPUT_NAME: model(image, training=False)}

    proto, _ = tf2onnx.convert.from_function(probabilities_from_image, input_signature=[spec], opset=int(opset))
    return proto


# --------------------------------------------------------------------------
# Graph helpers
# --------------------------------------------------------------------------


def _initializers(model):
    return {init.name: init for init in model.graph.initializer}


def _consumers(model, name):
    found = [node for node in model.graph.node if name in node.input]
    if any(out.name == name for out in model.graph.output):
        found.append(None)  # a graph output counts as a consumer
    return found


def _producer(model, name):
    for node in model.graph.node:
        if name in node.output:
            return node
    return None


def _array(model, name):
    from onnx import numpy_helper

    init = _initializers(model).get(name)
    return None if init is None else numpy_helper.to_array(init)


def _set_initializer(model, name, array):
    from onnx import numpy_helper

    for i, init in enumerate(model.graph.initializer):
        if init.name == name:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, name))
            return name
    model.graph.initializer.append(numpy_helper.from_array(array, name))
    return name


def _unique_name(model, base):
    taken = set(_initializers(model))
    for node in model.graph.node:
        taken.update(node.output)
        taken.add(node.name)
    name, i = base, 0
    while name in taken:
        i += 1
        name = "%s_%d" % (base, i)
    return name


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def static_shapes(model):
    """name -> list of dims (int, or None where unknown) from ONNX shape inference."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    values = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    for value in values:
        if not value.type.tensor_type.HasField("shape"):
            continue
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _replace_input(model, old, new):
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def remove_dead_nodes(model):
    """Drop nodes, initializers and opset imports that no graph output depends on."""
    needed = set(out.name for out in model.graph.output)
    keep = []
    for node in reversed(list(model.graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(name for name in node.input if name)
    keep.reverse()
    del model.graph.node[:]
    model.graph.node.extend(keep)
    inits = [init for init in model.graph.initializer if init.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)
    domains = set(node.domain or "" for node in model.graph.node) | {""}
    opsets = [op for op in model.opset_import if (op.domain or "") in domains]
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    del model.graph.value_info[:]  # stale after rewrites; shape inference recomputes it
    return model


# --------------------------------------------------------------------------
# Simplifying passes (each small, each returns the number of rewrites)
# --------------------------------------------------------------------------


def remove_identities(model):
    count = 0
    for node in list(model.graph.node):
        if node.op_type not in ("Identity", "Dropout"):
            continue
        if node.op_type == "Dropout" and len([o for o in node.output if o]) > 1 and _consumers(model, node.output[1]):
            continue  # the mask output is used: not a no-op
        src, dst = node.input[0], node.output[0]
        if any(out.name == dst for out in model.graph.output):
            producer = _producer(model, src)
            if producer is None:
                continue  # graph input straight to output: leave it
            producer.output[list(producer.output).index(src)] = dst
            _replace_input(model, src, dst)
        else:
            _replace_input(model, dst, src)
        model.graph.node.remove(node)
        count += 1
    return count


def _constant_tail_of_shape(model, name):
    """For a shape computed as Concat([<batch from Shape>, const...]) (maybe via Cast), the const tail."""
    node = _producer(model, name)
    while node is not None and node.op_type == "Cast":
        node = _producer(model, node.input[0])
    if node is None or node.op_type != "Concat" or len(node.input) < 2:
        return None
    tail = []
    for part in node.input[1:]:
        value = _array(model, part)
        if value is None:
            return None
        tail.extend(int(v) for v in np.asarray(value).reshape(-1))
    return tail


def constant_reshapes(model):
    """Reshape with a computed shape -> Reshape with a constant [-1, ...] shape."""
    shapes = static_shapes(model)
    count = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or _array(model, node.input[1]) is not None:
            continue
        data_dims = shapes.get(node.input[0]) or []
        if len(data_dims) < 2 or any(d is None for d in data_dims[1:]):
            raise ExportError(
                "Reshape %r has a computed shape and its input %r has no static shape %r; "
                "the Nano graph needs static shapes apart from the batch" % (node.name, node.input[0], data_dims)
            )
        per_sample = int(np.prod(data_dims[1:]))
        tail = _constant_tail_of_shape(model, node.input[1])
        if tail is None or -1 in tail or int(np.prod(tail)) != per_sample:
            tail = [per_sample]  # a flatten: the only dynamic reshape Keras models produce here
        const = _unique_name(model, node.name + "_shape")
        _set_initializer(model, const, np.array([-1] + tail, np.int64))
        node.input[1] = const
        count += 1
    return count


def fold_transpose_into_dense(model):
    """Transpose(NCHW->NHWC) -> Reshape[-1,K] -> MatMul(W): drop the Transpose, permute W's rows."""
    shapes = static_shapes(model)
    count = 0
    for transpose in list(model.graph.node):
        if transpose.op_type != "Transpose" or list(_attr(transpose, "perm", [])) != NCHW_TO_NHWC:
            continue
        users = _consumers(model, transpose.output[0])
        if len(users) != 1 or users[0] is None or users[0].op_type not in ("Reshape", "Flatten"):
            continue
        flatten = users[0]
        if flatten.op_type == "Reshape":
            target = _array(model, flatten.input[1])
            if target is None or len(target) != 2:
                continue
        elif _attr(flatten, "axis", 1) != 1:
            continue
        dense_users = _consumers(model, flatten.output[0])
        if len(dense_users) != 1 or dense_users[0] is None or dense_users[0].op_type not in ("MatMul", "Gemm"):
            continue
        dense = dense_users[0]
        if dense.op_type == "Gemm" and (_attr(dense, "transA", 0) or _attr(dense, "transB", 0)):
            continue
        weights = _array(model, dense.input[1])
        dims = shapes.get(transpose.input[0]) or []
        if weights is None or len(dims) != 4 or any(d is None for d in dims[1:]):
            continue
        _, c, h, w = dims
        if weights.shape[0] != c * h * w:
            continue
        # rows are in NHWC flatten order (h, w, c); reorder them to NCHW order (c, h, w)
        nchw_rows = weights.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
        name = _unique_name(model, dense.input[1] + "_nchw")
        _set_initializer(model, name, np.ascontiguousarray(nchw_rows))
        dense.input[1] = name
        flatten.input[0] = transpose.input[0]
        model.graph.node.remove(transpose)
        count += 1
    return count


def gemm_from_matmul(model):
    """MatMul(X[N,K], W const) (+ Add(b const)) -> Gemm(X, W, b)."""
    from onnx import helper

    shapes = static_shapes(model)
    count = 0
    for matmul in list(model.graph.node):
        if matmul.op_type != "MatMul":
            continue
        weights = _array(model, matmul.input[1])
        x_dims = shapes.get(matmul.input[0])
        if weights is None or weights.ndim != 2 or x_dims is None or len(x_dims) != 2:
            continue
        out = matmul.output[0]
        bias_name, users = None, _consumers(model, out)
        if len(users) == 1 and users[0] is not None and users[0].op_type == "Add":
            add = users[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            bias = _array(model, other)
            if bias is not None and bias.size == weights.shape[1]:
                bias_name = _unique_name(model, other + "_bias")
                _set_initializer(model, bias_name, bias.reshape(-1).astype(weights.dtype))
                out = add.output[0]
                model.graph.node.remove(add)
        if bias_name is None:
            bias_name = _unique_name(model, matmul.input[1] + "_zero_bias")
            _set_initializer(model, bias_name, np.zeros(weights.shape[1], weights.dtype))
        gemm = helper.make_node(
            "Gemm", [matmul.input[0], matmul.input[1], bias_name], [out], name=matmul.name or out
        )
        index = list(model.graph.node).index(matmul)
        model.graph.node.remove(matmul)
        model.graph.node.insert(index, gemm)
        count += 1
    return count


def gemm_with_transposed_weights(model):
    """Gemm(X, W[K,M]) -> Gemm(X, W^T[M,K], transB=1), the layout every importer handles.

    OpenCV 4.1.1's ONNX importer reads a Gemm without a ``transB`` attribute as if W were [M,K]
    (num_output = K) and fails on the bias; with ``transB=1`` it reads W^T directly.
    """
    from onnx import helper

    count = 0
    for gemm in model.graph.node:
        if gemm.op_type != "Gemm" or _attr(gemm, "transB", 0) or _attr(gemm, "transA", 0):
            continue
        weights = _array(model, gemm.input[1])
        if weights is None or weights.ndim != 2:
            continue
        name = _unique_name(model, gemm.input[1] + "_t")
        _set_initializer(model, name, np.ascontiguousarray(weights.T))
        gemm.input[1] = name
        kept = [a for a in gemm.attribute if a.name != "transB"]
        del gemm.attribute[:]
        gemm.attribute.extend(kept + [helper.make_attribute("transB", 1)])
        count += 1
    return count


def symmetric_conv_pads(model):
    """Conv with asymmetric pads (Keras "same" with stride 2) -> symmetric pads, exactly.

    OpenCV 4.1.1 refuses asymmetric convolution padding. Where an axis has pads (b, e) with
    e > b, the kernel grows by e - b zero taps at its start and the pads become (e, e) (zero
    taps at the end and (b, b) when b > e): every output reads the same inputs with the same
    weights, plus multiplications by zero.
    """
    from onnx import helper

    count = 0
    for conv in model.graph.node:
        if conv.op_type != "Conv":
            continue
        pads = list(_attr(conv, "pads", []) or [])
        weights = _array(model, conv.input[1])
        if not pads or weights is None or weights.ndim != 4:
            continue
        if any(int(d) != 1 for d in (_attr(conv, "dilations", [1, 1]) or [1, 1])):
            continue
        begin, end = pads[:2], pads[2:]
        if begin == end:
            continue
        grow = [(0, 0), (0, 0)]
        for axis in range(2):
            extra = abs(end[axis] - begin[axis])
            grow.append((extra, 0) if end[axis] > begin[axis] else (0, extra))
        grown = np.pad(weights, grow, mode="constant")
        new_pads = [max(b, e) for b, e in zip(begin, end, strict=True)] * 2
        name = _unique_name(model, conv.input[1] + "_sympad")
        _set_initializer(model, name, np.ascontiguousarray(grown))
        conv.input[1] = name
        kept = [a for a in conv.attribute if a.name not in ("pads", "kernel_shape")]
        del conv.attribute[:]
        conv.attribute.extend(kept + [helper.make_attribute("pads", new_pads),
                                      helper.make_attribute("kernel_shape", list(grown.shape[2:]))])
        count += 1
    return count


def _per_channel(value, channels, rank):
    """A constant that scales/shifts each output channel of a Gemm ([N,C]) or Conv ([N,C,H,W]) output."""
    if value is None:
        return None
    if value.size == 1:
        return np.full(channels, value.reshape(-1)[0], value.dtype)
    if value.size != channels:
        return None
    expected = (channels,) if rank == 2 else (channels, 1, 1)
    shape = tuple(d for d in value.shape)
    while len(shape) > len(expected) and shape[0] == 1:
        shape = shape[1:]
    return value.reshape(-1) if shape == expected else None


def fold_affine_into_layer(model):
    """Gemm/Conv -> Mul(const per channel) / Add(const per channel): folded into weights and bias.

    Keras BatchNormalization after a Dense or Conv layer comes out of tf2onnx as such a Mul and Add.
    """
    count = 0
    changed = True
    while changed:
        changed = False
        for layer in list(model.graph.node):
            if layer.op_type not in ("Gemm", "Conv") or (layer.op_type == "Gemm" and _attr(layer, "transB", 0)):
                continue
            users = _consumers(model, layer.output[0])
            if len(users) != 1 or users[0] is None or users[0].op_type not in ("Mul", "Add"):
                continue
            op = users[0]
            other = op.input[1] if op.input[0] == layer.output[0] else op.input[0]
            weights = _array(model, layer.input[1])
            if weights is None:
                continue
            channels = weights.shape[1] if layer.op_type == "Gemm" else weights.shape[0]
            rank = 2 if layer.op_type == "Gemm" else 4
            value = _per_channel(_array(model, other), channels, rank)
            bias = _array(model, layer.input[2]) if len(layer.input) > 2 and layer.input[2] else None
            if value is None or (len(layer.input) > 2 and layer.input[2] and bias is None):
                continue
            if bias is None:
                bias = np.zeros(channels, weights.dtype)
            bias = bias.reshape(-1).astype(np.float64)
            if op.op_type == "Mul":
                axis_shape = (1, channels) if layer.op_type == "Gemm" else (channels, 1, 1, 1)
                weights = (weights.astype(np.float64) * value.reshape(axis_shape)).astype(weights.dtype)
                bias = bias * value
                layer.input[1] = _set_initializer(model, _unique_name(model, layer.input[1] + "_scaled"), weights)
            else:
                bias = bias + value
            bias_name = _set_initializer(model, _unique_name(model, layer.name + "_bias"), bias.astype(weights.dtype))
            inputs = list(layer.input[:2]) + [bias_name]
            del layer.input[:]
            layer.input.extend(inputs)
            layer.output[0] = op.output[0]
            model.graph.node.remove(op)
            count += 1
            changed = True
            break
    return count


def canonical_names(model):
    """Name nodes, tensors and initializers by position (``Gemm_12``, ``Gemm_12_in1``...).

    tf2onnx numbers generated names with a process-wide counter, so the same Keras model
    exported twice in one process differed in names. With positional names an export is
    byte-identical for the same model, and engine caches keyed on the ONNX sha256 stay valid.
    """
    keep = set(v.name for v in model.graph.input) | set(v.name for v in model.graph.output)
    initializers = _initializers(model)
    renamed = {}
    for i, node in enumerate(model.graph.node):
        node.name = "%s_%d" % (node.op_type, i)
        for pos, name in enumerate(node.input):
            if name in initializers and name not in renamed:
                renamed[name] = "%s_in%d" % (node.name, pos)
        for pos, name in enumerate(node.output):
            if name and name not in keep:
                renamed[name] = node.name if pos == 0 else "%s_out%d" % (node.name, pos)
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    for init in model.graph.initializer:
        init.name = renamed.get(init.name, init.name)
    model.graph.name = "nano_digits"
    model.graph.doc_string = "exported by nano-digits convert from a Keras model with tf2onnx"
    return len(renamed)


def set_dynamic_batch(model):
    """Name the batch dimension of the input and output `N`, all other dims static."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = BATCH_DIM
    return model


def check_simple_ops(model, allowed=SIMPLE_OPS):
    """Raise ExportError naming any op outside the OpenCV 4.1 / TensorRT 8.2 common set."""
    extra = sorted(set(node.op_type for node in model.graph.node) - set(allowed))
    if extra:
        raise ExportError(
            "the exported graph uses %s, outside the ops OpenCV 4.1 DNN and TensorRT 8.2 both run "
            "(%s); simplify the Keras model or teach convert/onnx_from_keras.py to rewrite it"
            % (", ".join(extra), ", ".join(sorted(allowed)))
        )
    return model


def simplify_graph(model):
    """All rewrites, in order; returns the same (mutated) ModelProto."""
    counts = {}
    counts["identity"] = remove_identities(model)
    counts["constant_reshape"] = constant_reshapes(model)
    remove_dead_nodes(model)
    counts["transpose_folded"] = fold_transpose_into_dense(model)
    counts["gemm"] = gemm_from_matmul(model)
    counts["affine_folded"] = fold_affine_into_layer(model)
    counts["gemm_transposed"] = gemm_with_transposed_weights(model)
    counts["conv_pads_symmetric"] = symmetric_conv_pads(model)
    remove_dead_nodes(model)
    canonical_names(model)
    log.debug("simplified graph: %s", counts)
    return model


# --------------------------------------------------------------------------
# Metadata and the public entry point
# --------------------------------------------------------------------------


def producer_versions():
    """Versions of the tools that made the graph (also the manifest's created_by)."""
    import importlib

    versions = {}
    for module in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"):
        try:
            versions[module] = importlib.import_module(module).__version__
        except Exception:  # absent or broken: record that instead of failing the export
            versions[module] = None
    versions["project"] = _project_version()
    return versions


def _project_version():
    import edge_runtime

    return getattr(edge_runtime, "__version__", None)


def metadata_from_manifest(manifest):
    """metadata_props entries mirroring the manifest (values are JSON strings)."""
    keys = ("name", "input", "output", "preprocess", "labels", "created_by")
    return {key: json.dumps(manifest.get(key), sort_keys=True) for key in keys}


def set_metadata(model, metadata):
    del model.metadata_props[:]
    for key in sorted(metadata):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, metadata[key]
    return model


def onnx_from_keras(model, opset=DEFAULT_OPSET, name=None, manifest=None):
    """A Keras classifier -> onnx.ModelProto ready for OpenCV 4.1 DNN and TensorRT 8.2.

    Input `image` float32 [N,28,28,1] in [0, 1], output `probabilities` [N,10], dynamic batch,
    opset `opset` (<= 13), IR version 7. `manifest` (a dict from new_manifest) fills
    metadata_props; without it one is made from `name`.
    """
    import onnx

    opset = check_opset(opset)
    proto = raw_onnx_from_keras(model, opset)
    simplify_graph(proto)
    set_dynamic_batch(proto)
    proto.ir_version = IR_VERSION
    proto.producer_name = "nano-digits convert (tf2onnx %s)" % (proto.producer_version or "")
    if manifest is None:
        manifest = mf.new_manifest(name or model.name, opset=opset, ir_version=IR_VERSION)
        manifest["created_by"] = producer_versions()
    set_metadata(proto, metadata_from_manifest(manifest))
    check_simple_ops(proto)
    onnx.checker.check_model(proto)
    return proto


# --------------------------------------------------------------------------
# FP16 twin
# --------------------------------------------------------------------------


def fp16_from_fp32(model):
    """FP16 weights and compute with float32 I/O: Cast after the input and before the output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    half = onnx.ModelProto()
    half.CopyFrom(model)
    for i, init in enumerate(half.graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            array = numpy_helper.to_array(init)
            peak = float(np.abs(array).max(initial=0))
            if peak > np.finfo(np.float16).max:
                raise ExportError("initializer %r does not fit in float16 (max |x| = %g)" % (init.name, peak))
            half.graph.initializer[i].CopyFrom(numpy_helper.from_array(array.astype(np.float16), init.name))
    for value in half.graph.input:
        inner = _unique_name(half, value.name + "_fp16")
        _replace_input(half, value.name, inner)
        half.graph.node.insert(0, helper.make_node("Cast", [value.name], [inner], to=TensorProto.FLOAT16,
                                                   name=inner))
    for value in half.graph.output:
        inner = _unique_name(half, value.name + "_fp16")
        producer = _producer(half, value.name)
        producer.output[list(producer.output).index(value.name)] = inner
        _replace_input(half, value.name, inner)
        half.graph.node.append(helper.make_node("Cast", [inner], [value.name], to=TensorProto.FLOAT, name=inner))
    del half.graph.value_info[:]
    onnx.checker.check_model(half)
    return half
