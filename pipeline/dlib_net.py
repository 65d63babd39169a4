"""dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``) run in PyTorch.

``dlib.face_recognition_model_v1.compute_face_descriptor`` costs about 110 ms per 150x150 chip with
the ``dlib-bin`` wheel (built without BLAS) and holds the GIL for all of it. This module reads the
very same weights straight from dlib's binary ``.dat`` file (pure Python, no dlib needed) and runs
the same network with torch, which is an order of magnitude faster and releases the GIL.

The network is dlib's ``anet_type`` from ``dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

with ``ares<N>`` = relu(x + block(x)) and ``ares_down<N>`` = relu(avg_pool(x) + block_stride2(x)),
``block`` = affine(con3x3(relu(affine(con3x3(x))))). The file is checked against that structure
layer by layer; anything else is refused with a ``ValueError``.

File format (dlib's ``serialize``), as found in the bytes of the shipped model:

- int: one byte whose low nibble is the number of little-endian magnitude bytes that follow and
  whose high bit is the sign;
- string: int length, then the bytes;
- float/double: ``float_details``, an int mantissa then an int exponent (value = m * 2**e);
- bool: one ASCII byte, ``'1'`` or ``'0'``;
- tensor (version 2): int 2, ints num_samples, k, nr, nc, then raw little-endian float32s;
- alias_tensor: int 1, ints num_samples, k, nr, nc;
- ``add_loss_layer``: int 1, the loss (``"loss_metric_2"``, margin, distance threshold), then the
  network. Every ``add_layer`` writes its version and then its subnetwork *first*, so the file opens
  with a run of version ints (2 = layer, 1 = tag/skip, 3 = the bottom layer holding the input), and
  the layer details follow bottom-up. A version-2 layer writes, after its subnetwork: details, three
  bools, tensors x_grad, cached_output, params_grad. The version-3 bottom layer writes: the input
  layer, details, three bools, tensors x_grad, cached_output, grad_final, int sample expansion factor.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
LOSS_NAME = "loss_metric_2"

# Tensors in the shipped file are at most 256*256*3*3 floats; anything wildly larger is corruption.
_MAX_TENSOR_FLOATS = 1 << 26
_MAX_STRING = 256
_MAX_VERSION_RUN = 4096


# ---------------------------------------------------------------------------------------------
# Low-level reader


class _Reader:
    """Sequential reader of dlib's serialization primitives; every failure is a ``ValueError``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"dlib model file is truncated (needed {n} bytes at offset {self.pos})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def read_int(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise ValueError(f"bad dlib integer header 0x{head:02x} at offset {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def read_string(self) -> str:
        n = self.read_int()
        if not 0 <= n <= _MAX_STRING:
            raise ValueError(f"implausible string length {n} at offset {self.pos}")
        raw = self._take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"non-ASCII string at offset {self.pos - n}") from None

    def read_float(self) -> float:
        mantissa, exponent = self.read_int(), self.read_int()
        # float_details keeps inf/nan as special exponents; none are valid in this model.
        if not -2000 < exponent < 2000:
            raise ValueError(f"non-finite or corrupt float at offset {self.pos}")
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError:
            raise ValueError(f"float out of range at offset {self.pos}") from None

    def read_bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise ValueError(f"bad dlib bool {c!r} at offset {self.pos - 1}")
        return c == b"1"

    def expect_string(self, want: str) -> None:
        got = self.read_string()
        if got != want:
            raise ValueError(f"expected {want!r} at offset {self.pos}, found {got!r}")

    def _dims(self) -> tuple[int, int, int, int]:
        dims = (self.read_int(), self.read_int(), self.read_int(), self.read_int())
        if any(d < 0 for d in dims):
            raise ValueError(f"negative tensor dimension {dims} at offset {self.pos}")
        return dims

    def read_tensor(self) -> np.ndarray:
        version = self.read_int()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version} at offset {self.pos}")
        dims = self._dims()
        count = math.prod(dims)  # Python ints: corrupt dims cannot overflow
        if count > _MAX_TENSOR_FLOATS:
            raise ValueError(f"implausible tensor size {dims} at offset {self.pos}")
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(dims)

    def read_alias(self) -> tuple[int, int, int, int]:
        version = self.read_int()
        if version != 1:
            raise ValueError(f"unsupported dlib alias_tensor version {version} at offset {self.pos}")
        return self._dims()


# ---------------------------------------------------------------------------------------------
# Layer details


@dataclass
class Layer:
    """One layer's details as stored in the file (``name`` is dlib's version string)."""

    name: str
    ints: dict[str, int] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def _read_con(r: _Reader) -> Layer:
    params = r.read_tensor()
    names = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
    ints = {k: r.read_int() for k in names}
    filters, biases = r.read_alias(), r.read_alias()
    for _ in range(4):  # learning-rate / weight-decay multipliers: training only
        r.read_float()
    n, nr, nc = ints["num_filters"], ints["nr"], ints["nc"]
    if filters[0] != n or filters[2:] != (nr, nc) or biases != (1, n, 1, 1):
        raise ValueError(f"con_ alias shapes {filters}/{biases} disagree with {ints}")
    f_size = math.prod(filters)
    if params.size != f_size + n:
        raise ValueError(f"con_ has {params.size} params, expected {f_size + n}")
    flat = params.reshape(-1)
    return Layer("con_4", ints, {"weight": flat[:f_size].reshape(filters), "bias": flat[f_size:]})


def _read_affine(r: _Reader) -> Layer:
    params = r.read_tensor()
    gamma, beta = r.read_alias(), r.read_alias()
    mode = r.read_int()
    # CONV_MODE (0): one gamma/beta per channel, shape (1, k, 1, 1).
    if mode != 0 or gamma != beta or gamma[0] != 1 or gamma[2:] != (1, 1):
        raise ValueError(f"affine_ is not per-channel (mode {mode}, gamma {gamma}, beta {beta})")
    k = gamma[1]
    if params.size != 2 * k:
        raise ValueError(f"affine_ has {params.size} params, expected {2 * k}")
    flat = params.reshape(-1)
    return Layer("affine_", {"channels": k}, {"gamma": flat[:k], "beta": flat[k:]})


def _read_pool(name: str):
    def read(r: _Reader) -> Layer:
        names = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        return Layer(name, {k: r.read_int() for k in names})
    return read


def _read_fc(r: _Reader) -> Layer:
    num_outputs, num_inputs = r.read_int(), r.read_int()
    params = r.read_tensor()
    weights = r.read_alias()
    r.read_alias()  # the bias alias: unused in no-bias mode
    bias_mode = r.read_int()
    for _ in range(4):
        r.read_float()
    # FC_NO_BIAS (1): params hold only the (num_inputs x num_outputs) weight matrix.
    if bias_mode != 1 or weights != (num_inputs, num_outputs, 1, 1) or params.size != num_inputs * num_outputs:
        raise ValueError(f"fc_ is not fc_no_bias<{num_outputs}> over {num_inputs} inputs "
                         f"(bias_mode {bias_mode}, weights {weights}, {params.size} params)")
    return Layer("fc_2", {"num_outputs": num_outputs, "num_inputs": num_inputs},
                 {"weight": params.reshape(num_inputs, num_outputs)})


_DETAIL_READERS = {
    "con_4": _read_con,
    "affine_": _read_affine,
    "relu_": lambda r: Layer("relu_"),
    "add_prev_": lambda r: Layer("add_prev_"),
    "max_pool_2": _read_pool("max_pool_2"),
    "avg_pool_2": _read_pool("avg_pool_2"),
    "fc_2": _read_fc,
}


# ---------------------------------------------------------------------------------------------
# Expected architecture (dlib's anet_type), top-down, one entry per serialized node


# ("layer", name, checks) for add_layer (version 2), ("tag"|"skip", id, None) for version 1.
_Node = tuple[str, Any, dict[str, int] | None]


def _con(n: int, k: int, stride: int) -> _Node:
    # dlib's default padding: none when striding, else "same" (k // 2); the network relies on it.
    pad = 0 if stride != 1 else k // 2
    return ("layer", "con_4", {"num_filters": n, "nr": k, "nc": k, "stride_y": stride, "stride_x": stride,
                               "padding_y": pad, "padding_x": pad})


def _pool(name: str, k: int, stride: int) -> _Node:
    return ("layer", name, {"nr": k, "nc": k, "stride_y": stride, "stride_x": stride, "padding_y": 0, "padding_x": 0})


_AFFINE: _Node = ("layer", "affine_", None)
_RELU: _Node = ("layer", "relu_", None)
_ADD_PREV: _Node = ("layer", "add_prev_", None)


def _block(n: int, stride: int) -> list[_Node]:
    # BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUBNET>>>>>
    return [_AFFINE, _con(n, 3, 1), _RELU, _AFFINE, _con(n, 3, stride)]


def _ares(n: int) -> list[_Node]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [_RELU, _ADD_PREV, *_block(n, 1), ("tag", 1, None)]


def _ares_down(n: int) -> list[_Node]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [_RELU, _ADD_PREV, _pool("avg_pool_2", 2, 2), ("skip", 1, None), ("tag", 2, None),
            *_block(n, 2), ("tag", 1, None)]


# Residual units bottom-up: (filters, downsampling?)
_UNITS: list[tuple[int, bool]] = (
    [(32, False)] * 3                      # alevel4
    + [(64, True)] + [(64, False)] * 3     # alevel3
    + [(128, True)] + [(128, False)] * 2   # alevel2
    + [(256, True)] + [(256, False)] * 2   # alevel1
    + [(256, True)]                        # alevel0
)


def _expected_nodes() -> list[_Node]:
    top: list[_Node] = [("layer", "fc_2", {"num_outputs": DESCRIPTOR_SIZE}), _pool("avg_pool_2", 0, 1)]
    for n, down in reversed(_UNITS):
        top += _ares_down(n) if down else _ares(n)
    top += [_pool("max_pool_2", 3, 2), _RELU, _AFFINE, _con(32, 7, 2)]  # then the input layer
    return top


# ---------------------------------------------------------------------------------------------
# Parsing


@dataclass
class ParsedNet:
    """The file's contents that matter for inference."""

    avg_rgb: tuple[float, float, float]
    chip_size: int
    layers: list[Layer]  # add_layer details, bottom-up (tags and skips carry no data)
    margin: float
    distance_threshold: float


def parse(data: bytes) -> ParsedNet:
    """Parse dlib's ``anet_type`` face descriptor network from the bytes of its ``.dat`` file."""
    r = _Reader(data)
    try:
        if r.read_int() != 1 or r.read_string() != LOSS_NAME:
            raise ValueError("not a dlib loss_metric network")
    except ValueError as e:
        raise ValueError(f"not a dlib face recognition model ({e})") from None
    margin, distance_threshold = r.read_float(), r.read_float()

    # The top-down run of add_layer / tag / skip versions, ending at the input layer (version 3).
    versions: list[int] = []
    while True:
        v = r.read_int()
        if v == 3:
            break
        if v not in (1, 2) or len(versions) >= _MAX_VERSION_RUN:
            raise ValueError(f"unexpected layer version {v} at offset {r.pos}")
        versions.append(v)
    expected = _expected_nodes()
    # The bottom con is serialized inside the version-3 add_layer, so it has no entry in the run.
    want = [2 if kind == "layer" else 1 for kind, _, _ in expected[:-1]]
    if versions != want:
        raise ValueError(f"layer structure is not dlib's anet_type ({len(versions)} nodes, expected {len(want)})")

    r.expect_string("input_rgb_image_sized")
    avg_rgb = (r.read_float(), r.read_float(), r.read_float())
    nr, nc = r.read_int(), r.read_int()
    if (nr, nc) != (CHIP_SIZE, CHIP_SIZE):
        raise ValueError(f"input size {nr}x{nc}, expected {CHIP_SIZE}x{CHIP_SIZE}")

    layers: list[Layer] = []
    expected_layers = [node for node in reversed(expected) if node[0] == "layer"]
    for i, (_, name, checks) in enumerate(expected_layers):
        got = r.read_string()
        if got != name:
            raise ValueError(f"layer {i} (bottom-up) is {got!r}, expected {name!r}")
        layer = _DETAIL_READERS[name](r)
        for key, value in (checks or {}).items():
            if layer.ints[key] != value:
                raise ValueError(f"layer {i} ({name}): {key}={layer.ints[key]}, expected {value}")
        # Training state: three bools and empty/cached tensors (x_grad, cached_output, params_grad
        # or grad_final), plus the sample expansion factor in the bottom (version 3) layer.
        for _ in range(3):
            r.read_bool()
        for _ in range(3):
            r.read_tensor()
        if i == 0 and r.read_int() != 1:
            raise ValueError("unexpected sample expansion factor")
        layers.append(layer)

    if r.pos != len(data):
        log.warning("dlib model file has %d unread trailing bytes", len(data) - r.pos)
    _check_channels(layers)
    for i, layer in enumerate(layers):
        if not all(np.isfinite(a).all() for a in layer.arrays.values()):
            raise ValueError(f"layer {i} ({layer.name}) holds non-finite weights")
    if not all(np.isfinite(avg_rgb)):
        raise ValueError("non-finite input means")
    return ParsedNet(avg_rgb, nr, layers, margin, distance_threshold)


def _check_channels(layers: list[Layer]) -> None:
    """Every con_ must read the channel count its predecessor produced; affine_ must match."""
    channels = 3
    for layer in layers:
        if layer.name == "con_4":
            if layer.arrays["weight"].shape[1] != channels:
                raise ValueError(f"con_ expects {layer.arrays['weight'].shape[1]} input channels, gets {channels}")
            last_con = channels = layer.ints["num_filters"]
        elif layer.name == "affine_" and layer.ints["channels"] != last_con:
            raise ValueError(f"affine_ has {layer.ints['channels']} channels after a {last_con}-filter con_")
        elif layer.name == "add_prev_":
            channels = last_con  # block output (more channels) wins
        elif layer.name == "fc_2" and layer.ints["num_inputs"] != channels:
            raise ValueError(f"fc_ reads {layer.ints['num_inputs']} inputs, gets {channels}")


# ---------------------------------------------------------------------------------------------
# Torch model


def _conv_affine(con: Layer, affine: Layer) -> nn.Conv2d:
    """con_ followed by a per-channel affine_, folded into one conv: g*(W*x+b)+beta."""
    w = torch.from_numpy(con.arrays["weight"].astype(np.float32))
    b = torch.from_numpy(con.arrays["bias"].astype(np.float32))
    g = torch.from_numpy(affine.arrays["gamma"].astype(np.float32))
    beta = torch.from_numpy(affine.arrays["beta"].astype(np.float32))
    i = con.ints
    conv = nn.Conv2d(w.shape[1], w.shape[0], (i["nr"], i["nc"]), stride=(i["stride_y"], i["stride_x"]),
                     padding=(i["padding_y"], i["padding_x"]))
    with torch.no_grad():
        conv.weight.copy_(w * g.view(-1, 1, 1, 1))
        conv.bias.copy_(b * g + beta)
    return conv


def _pool_args(layer: Layer) -> dict[str, Any]:
    i = layer.ints
    return {"kernel_size": (i["nr"], i["nc"]), "stride": (i["stride_y"], i["stride_x"]),
            "padding": (i["padding_y"], i["padding_x"])}


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev_ (``tt::add``): the output takes the larger size in every dimension and each
    input counts as zero outside its own extent (extra channels, and extra rows/columns)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class _Residual(nn.Module):
    """ares / ares_down: relu(shortcut(x) + affine(con(relu(affine(con(x))))))."""

    def __init__(self, conv1: nn.Conv2d, conv2: nn.Conv2d, pool: dict[str, Any] | None) -> None:
        super().__init__()
        self.conv1, self.conv2, self.pool = conv1, conv2, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x), inplace=True))
        # ares_down: the shortcut is avg_pool(x); it has half the channels of y (zero-padded by dlib).
        shortcut = F.avg_pool2d(x, **self.pool, count_include_pad=False) if self.pool else x
        return F.relu(_add_zero_padded(shortcut, y), inplace=True)


class DlibFaceNet(nn.Module):
    """dlib's anet_type. Input: float RGB in [0, 255], NCHW, 150x150. Output: [N, 128] descriptors."""

    def __init__(self, parsed: ParsedNet) -> None:
        super().__init__()
        it = iter(parsed.layers)

        def take(name: str) -> Layer:
            layer = next(it)
            assert layer.name == name, (layer.name, name)  # guaranteed by parse()
            return layer

        self.register_buffer("mean", torch.tensor(parsed.avg_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.stem = _conv_affine(take("con_4"), take("affine_"))
        take("relu_")
        self.stem_pool = _pool_args(take("max_pool_2"))
        blocks = []
        for _, down in _UNITS:
            conv1 = _conv_affine(take("con_4"), take("affine_"))
            take("relu_")
            conv2 = _conv_affine(take("con_4"), take("affine_"))
            pool = _pool_args(take("avg_pool_2")) if down else None
            take("add_prev_")
            take("relu_")
            blocks.append(_Residual(conv1, conv2, pool))
        self.blocks = nn.Sequential(*blocks)
        take("avg_pool_2")  # avg_pool_everything (nr = nc = 0): a global mean
        self.register_buffer("fc", torch.from_numpy(take("fc_2").arrays["weight"].astype(np.float32)))
        self.eval()

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb - self.mean) / 256.0  # input_rgb_image_sized
        x = F.relu(self.stem(x), inplace=True)
        x = F.max_pool2d(x, **self.stem_pool)
        x = self.blocks(x)
        x = x.mean(dim=(2, 3))
        return x @ self.fc  # fc_no_bias; dlib returns this raw (no normalisation)


# ---------------------------------------------------------------------------------------------
# Public entry point


class DlibResNet:
    """dlib's face descriptor in torch. ``DlibResNet.load(path)`` parses a file once per process."""

    _cache: dict[tuple[str, int, int], DlibResNet] = {}
    _lock = threading.Lock()

    def __init__(self, parsed: ParsedNet) -> None:
        self.parsed = parsed
        # channels_last lets oneDNN skip layout reorders around every conv: ~1.6x faster at batch 1.
        self.model = DlibFaceNet(parsed).to(memory_format=torch.channels_last)
        # One forward pass at load: a file that parses but cannot run (or runs to nonsense) is refused
        # here, where the caller can fall back, instead of failing in every review.
        size = parsed.chip_size
        try:
            probe = self.descriptors(np.full((1, size, size, 3), 128, np.uint8))
        except RuntimeError as exc:
            raise ValueError(f"dlib model does not run: {exc}") from None
        if probe.shape != (1, DESCRIPTOR_SIZE) or not np.isfinite(probe).all():
            raise ValueError("dlib model gives no finite 128-d descriptor")

    @classmethod
    def from_bytes(cls, data: bytes) -> DlibResNet:
        return cls(parse(data))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DlibResNet:
        """Parse and convert ``path`` (cached per resolved path, size and mtime)."""
        p = Path(path).resolve()
        with cls._lock:  # one conversion per file even when threads race on the first call
            try:
                st = p.stat()
                key = (str(p), st.st_size, st.st_mtime_ns)
                net = cls._cache.get(key)
                data = p.read_bytes() if net is None else b""
            except OSError as e:
                raise ValueError(f"cannot read dlib model {p}: {e}") from None
            if net is None:
                t0 = time.perf_counter()
                net = cls._cache[key] = cls.from_bytes(data)
                log.info("converted dlib model %s to torch in %.2f s", p.name, time.perf_counter() - t0)
            return net

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """128-d descriptors of aligned face chips (uint8 RGB, [N, 150, 150, 3] or [150, 150, 3]),
        as ``dlib.face_recognition_model_v1.compute_face_descriptor(chip)`` returns them."""
        chips = np.asarray(chips)
        if chips.ndim == 3:
            chips = chips[None]
        size = self.parsed.chip_size
        if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
            raise ValueError(f"expected uint8 chips of shape [N, {size}, {size}, 3], got {chips.dtype} {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2)  # NHWC memory = channels_last
            x = x.float().contiguous(memory_format=torch.channels_last)
            return self.model(x).numpy().astype(np.float32, copy=False)
