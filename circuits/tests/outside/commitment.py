#!/usr/bin/env python3
"""zkinfer's tensor commitment, written from the README's description alone (no Rust, no
halo2 code read): the Poseidon constants are derived here from the Grain LFSR of the Poseidon
paper, the permutation is the textbook one (every round adds all T constants; the Rust side
runs the optimized form), and the sponge, padding, tag and packing are spelled out below.

Usage:
  commitment.py raw                        JSON cases on stdin, one commitment per line out
  commitment.py input INPUT.json DIR [--salt HEX]
  commitment.py output PROOF.json DIR
  commitment.py weights DIR                (the quantized weights of DIR's qgraph.json)
(DIR is a compiled model folder: its settings.json gives shapes, scale and slot width.)

Standard library only.
"""
import json
import sys
from fractions import Fraction
from math import floor

# BN254's scalar field.
P = 21888242871839275222246405745257275088548364400416034343698204186575808495617
T, RATE, R_F, R_P = 3, 2, 8, 57
NUM_BITS = 254  # bits of P
CAPACITY = 1 << 64  # state[0] at the start: 2^64 + (outputs - 1), one output
TENSOR_TAG = int.from_bytes(b"zkinfer tensor v1", "big")
WEIGHTS_TAG = int.from_bytes(b"zkinfer weights v1", "big")
LIMB_BITS = 253


class Grain:
    """The Grain LFSR of the Poseidon paper (Appendix F), 80 bits of state."""

    def __init__(self):
        bits = []

        def put(value, n):
            bits.extend((value >> (n - 1 - i)) & 1 for i in range(n))

        put(1, 2)  # prime field
        put(0, 4)  # S-box x^alpha
        put(NUM_BITS, 12)
        put(T, 12)
        put(R_F, 10)
        put(R_P, 10)
        put((1 << 30) - 1, 30)
        self.s = bits
        for _ in range(160):
            self._raw()

    def _raw(self):
        s = self.s
        b = s[62] ^ s[51] ^ s[38] ^ s[23] ^ s[13] ^ s[0]
        self.s = s[1:] + [b]
        return b

    def bit(self):
        # Filtered output: draw pairs, keep the second bit when the first is 1.
        while True:
            first = self._raw()
            second = self._raw()
            if first:
                return second

    def integer(self):
        v = 0
        for _ in range(NUM_BITS):
            v = (v << 1) | self.bit()
        return v

    def field_element(self):
        while True:  # rejection sampling
            v = self.integer()
            if v < P:
                return v

    def field_element_reduced(self):
        return self.integer() % P


def constants():
    g = Grain()
    rc = [[g.field_element() for _ in range(T)] for _ in range(R_F + R_P)]
    while True:  # the first 2T distinct draws (SECURE_MDS = 0): a Cauchy matrix
        vals = [g.field_element_reduced() for _ in range(2 * T)]
        if len(set(vals)) == len(vals):
            break
    xs, ys = vals[:T], vals[T:]
    mds = [[pow(xs[i] + ys[j], P - 2, P) for j in range(T)] for i in range(T)]
    return rc, mds


RC, MDS = constants()


def permute(state):
    state = list(state)
    for r in range(R_F + R_P):
        state = [(x + c) % P for x, c in zip(state, RC[r])]
        if r < R_F // 2 or r >= R_F // 2 + R_P:
            state = [pow(x, 5, P) for x in state]
        else:
            state[0] = pow(state[0], 5, P)
        state = [sum(m * x for m, x in zip(row, state)) % P for row in MDS]
    return state


def poseidon(elements):
    """The sponge: a 1 appended, zeros to an even length, pairs added to state[1], state[2]."""
    padded = list(elements) + [1]
    if len(padded) % RATE:
        padded.append(0)
    state = [CAPACITY, 0, 0]
    for i in range(0, len(padded), RATE):
        state[1] = (state[1] + padded[i]) % P
        state[2] = (state[2] + padded[i + 1]) % P
        state = permute(state)
    return state[1]


def limbs(shape, bits, values):
    n = 1
    for d in shape:
        n *= d
    assert len(values) == n, (len(values), shape)
    half = 1 << (bits - 1)
    assert all(-half <= v < half for v in values)
    m = LIMB_BITS // bits
    return [sum((v + half) << (bits * j) for j, v in enumerate(values[i : i + m])) for i in range(0, n, m)]


def commit(shape, scale, bits, values, salt=0):
    return poseidon([TENSOR_TAG, len(shape), *shape, scale, bits, salt, *limbs(shape, bits, values)])


def commit_weights(tensors, scale, bits):
    """One commitment over every weight tensor (shape, values), in graph order, no salt."""
    pre = [WEIGHTS_TAG, len(tensors)]
    for shape, values in tensors:
        pre += [len(shape), *shape, scale, bits, *limbs(shape, bits, values)]
    return poseidon(pre)


def quantize(x, scale):
    """round(x · 2^scale), halves away from zero, exactly (x is a binary64)."""
    q = Fraction(x) * (1 << scale)
    r = floor(abs(q) + Fraction(1, 2))
    return r if q >= 0 else -r


def flat(x):
    return [y for e in x for y in flat(e)] if isinstance(x, list) else [x]


def hex64(v):
    return format(v, "064x")


def settings(folder):
    with open(f"{folder}/settings.json") as f:
        return json.load(f)


def main(argv):
    if argv[1] == "raw":
        for case in json.load(sys.stdin):
            salt = int(case.get("salt", "0"), 16)
            print(hex64(commit(case["shape"], case["scale"], case["bits"], case["values"], salt)))
    elif argv[1] == "input":
        s = settings(argv[3])
        with open(argv[2]) as f:
            data = json.load(f)["input_data"]
        salt = int(argv[argv.index("--salt") + 1], 16) if "--salt" in argv else 0
        widths = s.get("input_slot_bits") or [s["act_bits"]] * len(data)
        for shape, w, xs in zip(s["input_shapes"], widths, data):
            values = [quantize(x, s["scale"]) for x in flat(xs)]
            print(hex64(commit(shape, s["scale"], w, values, salt)))
    elif argv[1] == "output":
        s = settings(argv[3])
        with open(argv[2]) as f:
            outputs = json.load(f)["outputs"]
        widths = s.get("output_slot_bits") or [s["act_bits"]] * len(outputs)
        for shape, w, xs in zip(s["output_shapes"], widths, outputs):
            values = [quantize(x, s["scale"]) for x in flat(xs)]
            print(hex64(commit(shape, s["scale"], w, values)))
    elif argv[1] == "weights":
        s = settings(argv[2])
        with open(f"{argv[2]}/qgraph.json") as f:
            nodes = json.load(f)["nodes"]
        tensors = [(n["shape"], n["op"]["Param"]["values"]) for n in nodes if "Param" in n["op"]]
        print(hex64(commit_weights(tensors, s["scale"], s["weight_bits"])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
