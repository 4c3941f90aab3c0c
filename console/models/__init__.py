"""The pages' Qt-free models: what each page shows, as plain data and pure functions.

- :mod:`~console.models.cart_tiles`: the carts page's tiles and sections, the wall's cart
  summary, the rules for Unlock and Lock and the sentences for the edge's error codes.
- :mod:`~console.models.plate_rows`: the plate feed's rows from ``plate.read`` events, its
  filter and CSV export.
- :mod:`~console.models.device_charts`: the device page's chart buffers and samples from
  ``/metrics``.
- :mod:`~console.models.config_form`: the config editor's form from the edge's JSON schema,
  parsing, validation, diffs and the merge patch.
- :mod:`~console.models.event_text`: edge events as sentences for people.

A presenter (:mod:`console.presenters`) keeps and changes these; a widget (:mod:`console.ui`)
paints them. No Qt and nothing heavy here: a test imports every module in a fresh interpreter.
"""
