"""Unit constants. Decimal for bandwidth and FLOPs (vendor convention), binary for memory sizes."""

GIB = 1024**3
MIB = 1024**2
KIB = 1024
GB = 1e9
TERA = 1e12
MS = 1e-3
US = 1e-6
GBIT_BYTES = 1e9 / 8  # bytes per second in one Gb/s

# int4: 4-bit weights (AWQ, GPTQ), two to a byte; activations and the KV cache stay 16-bit
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}
