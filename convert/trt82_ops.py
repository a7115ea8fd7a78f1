"""Which ONNX graphs TensorRT 8.2's ONNX parser (JetPack 4.6.1+ on the Jetson Nano) accepts.

Source: onnx/onnx-tensorrt, ``docs/operators.md``. The index available while writing this held
the 8.0 version, the 8.4 version (commit 009d6541b4ee1fa3f3150cd7cbabe7e56aa54840, "TensorRT 8.4
supports operators up to Opset 13") and later ones, but not the ``8.2-GA`` branch's copy itself
(whose header reads "TensorRT 8.2 supports operators up to Opset 13"). The table below is therefore
the 8.4 table minus what ``docs/Changelog.md`` lists as added in "TensorRT 8.4 GA Release"
(``Shrink``, ``Xor``); "TensorRT 8.2 EA Release" added Einsum, IsNan, GatherND, Scatter,
ScatterElements, ScatterND, Sign and Round, which are in. "8.2 GA" added no operators.

`check_trt82(model)` returns a list of human-readable problems (empty = the parser should take it):
opset above 13, ops outside the table, ops from other domains, and the restrictions of the table
that can be checked statically (e.g. Conv weights must be initializers).
"""

MAX_OPSET = 13
SOURCE = "onnx/onnx-tensorrt docs/operators.md (8.4 table @009d654 minus ops added in 8.4 GA per docs/Changelog.md)"

# op -> restriction noted in the table ("" when none)
SUPPORTED = {
    "Abs": "", "Acos": "", "Acosh": "", "Add": "", "And": "", "ArgMax": "", "ArgMin": "",
    "Asin": "", "Asinh": "", "Atan": "", "Atanh": "",
    "AveragePool": "2D or 3D Pooling only",
    "BatchNormalization": "", "Cast": "", "Ceil": "", "Celu": "", "Clip": "", "Concat": "",
    "Constant": "", "ConstantOfShape": "FP32 only",
    "Conv": "2D or 3D convolutions only; weights W must be an initializer",
    "ConvTranspose": "2D or 3D deconvolutions only; weights W must be an initializer",
    "Cos": "", "Cosh": "",
    "CumSum": "axis must be an initializer",
    "DepthToSpace": "",
    "DequantizeLinear": "x_zero_point must be zero",
    "Div": "", "Dropout": "",
    "Einsum": "no ellipsis, no diagonal operations, no broadcasting between inputs",
    "Elu": "", "Equal": "", "Erf": "", "Exp": "", "Expand": "", "EyeLike": "", "Flatten": "", "Floor": "",
    "Gather": "", "GatherElements": "", "GatherND": "", "Gemm": "",
    "GlobalAveragePool": "", "GlobalLpPool": "", "GlobalMaxPool": "",
    "Greater": "", "GreaterOrEqual": "",
    "GRU": "bidirectional: same activations both ways",
    "HardSigmoid": "", "Identity": "",
    "If": "branch outputs must have broadcastable shapes and different names",
    "ImageScaler": "",
    "InstanceNormalization": "scale and B must be initializers; input rank 3..5",
    "IsNaN": "", "LeakyRelu": "", "Less": "", "LessOrEqual": "", "Log": "", "LogSoftmax": "", "Loop": "",
    "LRN": "",
    "LSTM": "bidirectional: same activations both ways",
    "LpNormalization": "", "LpPool": "", "MatMul": "", "Max": "",
    "MaxPool": "2D or 3D pooling only; the Indices output is unsupported",
    "Mean": "", "Min": "", "Mul": "", "Neg": "",
    "NonMaxSuppression": "experimental; thresholds must be initializers",
    "Not": "", "Or": "", "Pad": "", "ParametricSoftplus": "", "Pow": "", "PRelu": "",
    "QuantizeLinear": "y_zero_point must be 0",
    "RandomUniform": "seed ignored", "RandomUniformLike": "seed ignored",
    "Range": "floating point start/limit/delta must be initializers",
    "ReduceL1": "", "ReduceL2": "", "ReduceLogSum": "", "ReduceLogSumExp": "", "ReduceMax": "",
    "ReduceMean": "", "ReduceMin": "", "ReduceProd": "", "ReduceSum": "", "ReduceSumSquare": "",
    "Relu": "", "Reshape": "",
    "Resize": "modes nearest/linear; see the table for coordinate transformation modes",
    "ReverseSequence": "dynamic input shapes unsupported",
    "RNN": "bidirectional: same activations both ways",
    "Round": "", "ScaledTanh": "", "Scan": "", "Scatter": "", "ScatterElements": "", "ScatterND": "",
    "Selu": "", "Shape": "", "Sigmoid": "", "Sign": "", "Sin": "", "Sinh": "", "Size": "",
    "Slice": "axes must be an initializer",
    "Softmax": "", "Softplus": "", "Softsign": "", "SpaceToDepth": "", "Split": "", "Sqrt": "",
    "Squeeze": "axes must be an initializer",
    "Sub": "", "Sum": "", "Tan": "", "Tanh": "", "ThresholdedRelu": "", "Tile": "",
    "TopK": "K must be an initializer",
    "Transpose": "",
    "Unsqueeze": "axes must be a constant tensor",
    "Upsample": "", "Where": "",
}

# Listed as "N" in the table (or added only after 8.2).
UNSUPPORTED = frozenset(
    [
        "BitShift", "Compress", "ConcatFromSequence", "ConvInteger", "Det", "DynamicQuantizeLinear",
        "Hardmax", "IsInf", "MatMulInteger", "MaxRoiPool", "MaxUnpool", "MeanVarianceNormalization",
        "Mod", "Multinomial", "NegativeLogLikelihoodLoss", "NonZero", "OneHot", "QLinearConv",
        "QLinearMatMul", "RandomNormal", "RandomNormalLike", "Reciprocal", "RoiAlign", "SequenceAt",
        "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
        "Shrink", "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringNormalizer", "TfIdfVectorizer",
        "Unique", "Xor",
    ]
)

# op -> indices of inputs that must be initializers (or Constant outputs)
_CONSTANT_INPUTS = {
    "Conv": (1,), "ConvTranspose": (1,), "CumSum": (1,), "Slice": (3,), "Squeeze": (1,),
    "Unsqueeze": (1,), "TopK": (1,), "InstanceNormalization": (1, 2),
}


def _default_opset(model):
    for entry in model.opset_import:
        if (entry.domain or "") in ("", "ai.onnx"):
            return int(entry.version)
    return None


def _constants(model):
    names = set(init.name for init in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            names.update(node.output)
    return names


def check_trt82(model):
    """Problems TensorRT 8.2's ONNX parser would have with ``model`` (an onnx.ModelProto); [] if none."""
    problems = []
    opset = _default_opset(model)
    if opset is None:
        problems.append("no default-domain opset import; re-export with opset %d" % MAX_OPSET)
    elif opset > MAX_OPSET:
        problems.append("opset %d > %d: TensorRT 8.2 parses opsets up to %d; re-export with --opset %d"
                        % (opset, MAX_OPSET, MAX_OPSET, MAX_OPSET))
    constants = _constants(model)
    for node in model.graph.node:
        where = "%s node %r" % (node.op_type, node.name or (node.output[0] if node.output else "?"))
        if (node.domain or "") not in ("", "ai.onnx"):
            problems.append("%s: custom domain %r needs a TensorRT plugin" % (where, node.domain))
            continue
        if node.op_type not in SUPPORTED:
            state = "listed as unsupported" if node.op_type in UNSUPPORTED else "not in the table"
            problems.append("%s: op %s is %s for TensorRT 8.2 (%s)" % (where, node.op_type, state, SOURCE))
            continue
        for index in _CONSTANT_INPUTS.get(node.op_type, ()):
            if index < len(node.input) and node.input[index] and node.input[index] not in constants:
                problems.append("%s: input %d (%s) must be an initializer for TensorRT 8.2 (%s)"
                                % (where, index, node.input[index], SUPPORTED[node.op_type]))
        if node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1:
            problems.append("%s: the Indices output is unsupported by TensorRT 8.2" % where)
    return problems
