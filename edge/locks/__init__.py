"""Cart locks: RS485 lock boards spoken to as Modbus RTU.

Pure parts (no I/O, no pymodbus): :mod:`.register_map` (which coil and inputs belong to which
cart), :mod:`.rtu` (CRC and classifying what came back on the line), :mod:`.state` (the per-cart
state machine). The blocking edge: :mod:`.bus` (pymodbus's sync client over pyserial) owned by
the one thread of :mod:`.driver`. :mod:`.service` ties the driver to the event loop, the event
log, the store and the metrics. :mod:`.sim` is a board simulator (pymodbus's own server).

Importing this package loads neither pyserial nor pymodbus: the edge imports the lock service
only when ``locks.enabled`` is set.
"""
