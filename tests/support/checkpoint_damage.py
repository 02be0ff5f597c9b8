"""A saved checkpoint damaged as a bad disk would damage it, for the tests of the CRC-32 checks."""


def flip_tensor_bytes(path, tensors: dict, count=100):
    """Damage ``path`` as a bad disk would: invert ``count`` bytes in the middle of the data of the
    largest of ``tensors`` that the file stores once, where it stores it (found by its bytes; the
    zip's headers stay intact). Returns that tensor's name."""
    data = bytearray(path.read_bytes())
    for name, tensor in sorted(tensors.items(), key=lambda item: -item[1].numel()):
        stored = tensor.contiguous().numpy().tobytes()
        start = data.find(stored)
        if len(stored) >= count and start > 0 and data.find(stored, start + 1) == -1:
            first = start + (len(stored) - count) // 2
            data[first:first + count] = bytes(b ^ 0xFF for b in data[first:first + count])
            path.write_bytes(bytes(data))
            return name
    raise AssertionError(f'none of {list(tensors)} is stored once in {path}')
