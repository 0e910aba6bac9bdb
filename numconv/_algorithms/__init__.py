"""Convolution algorithms: each turns a validated plan and arrays into a result.

Every algorithm module offers ``applies(plan)`` (whether it can compute that
convolution at all) and ``forward``, ``input_grad`` and ``weight_grad`` with
the signatures of :mod:`numconv._algorithms.direct`; ``numconv._dispatch``
picks one per call.
"""
