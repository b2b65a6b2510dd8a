#!/usr/bin/env python3
"""Writes test/fixtures/onnx-attention.json: every case of ONNX's Attention
test file (onnx/backend/test/case/node/attention.py), inputs and expected
outputs, as computed by ONNX's own reference implementation
(onnx/reference/ops/op_attention.py).

Usage: scripts/gen-onnx-attention-fixtures.py <onnx checkout> [out.json]
(for a tree without .git, e.g. `git archive` of the two files, give the
commit in ONNX_COMMIT). Run it with the Python that has numpy, e.g. Debian's
/usr/bin/python3 after `apt-get install python3-numpy`. The tests only read
the JSON; nothing in `make test` runs this script.

The onnx checkout is only read and run, never copied: its Python package
needs a compiled extension, so this script stands in for the few pieces
the two files import (onnx.helper.make_node/make_opsetid/
tensor_dtype_to_np_dtype, TensorProto, the test-case Base class, `expect`,
and OpRun) and loads the two files themselves by path. Needs numpy only
(Debian: python3-numpy).

Arrays are stored little-endian, base64-encoded, with dtype and dims.
"""
from __future__ import annotations

import base64
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import types

import numpy as np


def module(name: str) -> types.ModuleType:
    m = types.ModuleType(name)
    m.__path__ = []  # a package, so submodules resolve
    sys.modules[name] = m
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, m)
    return m


class Node:
    def __init__(self, op_type, inputs, outputs, **attributes):
        self.op_type = op_type
        self.input = list(inputs)
        self.output = list(outputs)
        self.attributes = attributes


# ONNX's TensorProto data-type numbers (onnx.proto).
TENSOR_TYPES = {1: np.float32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 6: np.int32}


def install_shim() -> list:
    onnx = module("onnx")
    helper = module("onnx.helper")
    helper.make_node = lambda op_type, inputs, outputs, **kw: Node(op_type, inputs, outputs, **kw)
    helper.make_opsetid = lambda domain, version: (domain, version)
    helper.tensor_dtype_to_np_dtype = lambda t: np.dtype(TENSOR_TYPES[t])
    onnx.TensorProto = types.SimpleNamespace(FLOAT=1, INT32=6, INT64=7, BOOL=9, FLOAT16=10, DOUBLE=11)
    for name in ["onnx.backend", "onnx.backend.test", "onnx.backend.test.case", "onnx.reference", "onnx.reference.ops"]:
        module(name)
    module("onnx.backend.test.case.base").Base = type("Base", (), {})
    module("onnx.reference.op_run").OpRun = type("OpRun", (), {})
    captured = []

    def expect(node, inputs, outputs, name, **kwargs):
        captured.append((node, inputs, outputs, name, kwargs))

    module("onnx.backend.test.case.node").expect = expect
    return captured


def load(path: str, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, m)
    spec.loader.exec_module(m)
    return m


def tensor(a: np.ndarray) -> dict:
    a = np.asarray(a)
    kind = {np.float32: "float32", np.float16: "float16", np.float64: "float64", np.int64: "int64",
            np.int32: "int32", np.bool_: "bool"}[a.dtype.type]
    data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
    return {"type": kind, "dims": list(a.shape), "data": base64.b64encode(data.tobytes()).decode()}


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "test",
                                                             "fixtures", "onnx-attention.json")
    captured = install_shim()
    load(os.path.join(root, "onnx/reference/ops/op_attention.py"), "onnx.reference.ops.op_attention")
    cases = load(os.path.join(root, "onnx/backend/test/case/node/attention.py"), "onnx_attention_cases")
    exports = sorted(n for n, f in inspect.getmembers(cases.Attention) if n.startswith("export"))
    for n in exports:
        np.random.seed(0)  # as onnx's own generator does before each export
        getattr(cases.Attention, n)()
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = os.environ.get("ONNX_COMMIT", "unknown")  # files exported from a bare clone
    result = []
    for node, inputs, outputs, name, kwargs in captured:
        in_names = [x for x in node.input if x]
        out_names = [x for x in node.output if x]
        assert len(in_names) == len(inputs) and len(out_names) == len(outputs), name
        opset = [v for d, v in kwargs.get("opset_imports", []) if d == ""]
        result.append({
            "name": name,
            "opset": opset[0] if opset else None,
            "attributes": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in node.attributes.items()},
            "inputs": {k: tensor(v) for k, v in zip(in_names, inputs)},
            "outputs": {k: tensor(v) for k, v in zip(out_names, outputs)},
        })
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({
            "source": "onnx/onnx, onnx/backend/test/case/node/attention.py run with "
                      "onnx/reference/ops/op_attention.py (Apache-2.0)",
            "onnx_commit": commit,
            "numpy": np.__version__,
            "cases": result,
        }, f, separators=(",", ":"))
        f.write("\n")
    print(f"{len(result)} cases from onnx {commit} -> {out}")


if __name__ == "__main__":
    main()
