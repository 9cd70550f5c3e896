"""How messages reach the worker: the embedded broker, the Redis transport, and intake.

Intake is everything a message passes before a task runs: its size after
decompression, the allow-list decoder of the original's wire format, the checks of
its id, headers and arguments, fair dispatch, and the one line a refusal gets.
Connecting to a broker or result backend that is down or refusing is here too.
"""
