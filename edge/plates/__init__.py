"""Licence plates: recognisers, triggers, members, and the service that stores and announces reads.

- :mod:`.types` — what every recogniser returns (:class:`~.types.PlateRead`) and the
  :class:`~.types.Recognizer` interface; no OpenCV, no HTTP.
- :mod:`.normalize` — plate text to the site's formats (regexes) with character confusions.
- :mod:`.local` — the offline reader: OpenCV + RapidOCR's ONNX models shipped in its wheel;
  finds plate candidates in the region of interest and recognises only the crops.
- :mod:`.cloud` — Plate Recognizer's Snapshot API (cloud or on-prem SDK) behind a token bucket,
  429 back-off, retries, a circuit breaker and the monthly quota (:mod:`.throttle`).
- :mod:`.motion` — vehicle presence in the region of interest with hysteresis (one car, one
  episode); :mod:`.dedup` — the same plate at the same bay within a window is one read.
- :mod:`.members` — the club's plate list and fuzzy matching (edit distance <= 1, candidates).
- :mod:`.dataset` — synthetic bay frames with known plates (bench/plates, tests).
- :mod:`.service` — the policy (local, cloud, local_then_cloud, none), the triggers (handshake,
  motion, interval), storage, outbox and ``plate.read`` / ``member.recognized`` events.

Importing this package loads nothing heavy; :mod:`.local` loads RapidOCR when first built.
"""
