"""Codec payload parsing, one module per codec, read without decoding (aiortc's ``codecs/``,
mediasoup's ``RTC/Codecs/``)."""
