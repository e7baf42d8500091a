"""Prints a well-formed keyplane key: PREFIX + base62(32 random bytes) in 43 characters +
base62(crc32 of those) in 6, generated independently of keyplane's own code."""

import os
import sys
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int) -> str:
    digits = ""
    while n:
        n, r = divmod(n, 62)
        digits = ALPHABET[r] + digits
    return (digits or "0").rjust(width, "0")


body = base62(int.from_bytes(os.urandom(32), "big"), 43)
print(sys.argv[1] + body + base62(zlib.crc32(body.encode("ascii")), 6))
