"""Cumulo: an open-source private cloud behind the CloudStack and S3 APIs."""

__version__ = "0.1.0"
# The CloudStack release whose API Cumulo speaks (clients read it from listCapabilities).
CLOUDSTACK_VERSION = "4.22.0.0"
