"""Errors in the shape moto serializes for each protocol."""

from moto.core.exceptions import ServiceException


class SimServiceError(ServiceException):
    """An AWS error with a code from the service's model, so that moto's serializer
    gives it the model's HTTP status and the protocol's error shape."""

    def __init__(self, code, message):
        super().__init__(code, message)
