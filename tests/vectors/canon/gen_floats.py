#!/usr/bin/env python3
# gen_floats.py -- regenerates floats.txt: Python's repr() and the vendor's
# canonical-JSON form of a fixed set of doubles (stdlib only, seeded).
# Each line: <IEEE-754 bits, 16 hex digits> <repr(x)> <canonical JSON of x>
# where canonical = json.dumps(process_value(x), ...) as in the vendor sample.
# Usage: gen_floats.py > floats.txt     (or --check FILE: exit 1 on mismatch)
import json
import random
import struct
import sys


def process_value(v):
    if isinstance(v, float) and v == int(v):
        return int(v)
    return v


def canonical(x):
    return json.dumps(process_value(x), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def values():
    rng = random.Random(20261122)
    out = [0.0, -0.0, 0.1, 0.2, 0.3, 1.0, -1.0, 1.5, 0.5, 100.0, 1e-07,
           1e-05, 0.0001, 0.001, 1.5e-07, 1e16, 1e15, 1e17, 1e20, 1e22, 1e23,
           1.5e300, 1.7976931348623157e308, 5e-324, 2.2250738585072014e-308,
           2.225073858507201e-308, 9007199254740992.0, 9007199254740993.0,
           4503599627370495.5, 9223372036854775807.0, -9223372036854775808.0,
           18446744073709551616.0, 123456789.123, 3.141592653589793,
           2.718281828459045, 87.35, 99.99, 0.07, 1234.5, 12345678901234.5,
           123456789012345.6, 1e-310, 0.30000000000000004, 1 / 3, 2 / 3,
           -1e-05, -0.0001, 4.35, 1e-4, 9.999999999999999e-05]
    for e in range(-1074, 1024):
        out.append(2.0 ** e)
        if e % 7 == 0:
            out.append(-(2.0 ** e))
    for e in range(-330, 309):
        out.append(float("1e%d" % e))
    while len(out) < 5000:
        kind = rng.randrange(4)
        if kind == 0:
            b = rng.getrandbits(64)
            x = struct.unpack("<d", struct.pack("<Q", b))[0]
            if x != x or x in (float("inf"), float("-inf")):
                continue
        elif kind == 1:
            x = round(rng.uniform(-1e6, 1e6), rng.randrange(0, 8))
        elif kind == 2:
            x = rng.random() * 10.0 ** rng.randrange(-12, 20)
        else:
            x = float(rng.randrange(-10**6, 10**6)) / 10 ** rng.randrange(1, 6)
        out.append(x)
    return out


def lines():
    for x in values():
        yield "%016x %s %s" % (bits(x), repr(x), canonical(x))


def main():
    text = "\n".join(lines()) + "\n"
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        with open(sys.argv[2], encoding="utf-8") as f:
            if f.read() != text:
                print("floats.txt differs from Python's output", file=sys.stderr)
                return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
