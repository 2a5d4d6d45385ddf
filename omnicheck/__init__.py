"""omnicheck: does the quantized multimodal model still see, hear and read as well as its reference?"""

__version__ = "0.1.0"
