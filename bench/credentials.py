"""The administrator key a data dir's first start writes (`<data-dir>/credentials`, the
AWS shared-credentials format), as the bench scripts sign with it."""

import configparser

import boto3
from botocore.credentials import Credentials


def credentials(path: str) -> Credentials:
    """The `default` profile's key of a shared-credentials file."""
    profile = configparser.ConfigParser()
    profile.read(path)
    return Credentials(profile["default"]["aws_access_key_id"], profile["default"]["aws_secret_access_key"])


def session(path: str, region: str = "us-east-1") -> boto3.session.Session:
    """A boto3 session signing with that key."""
    key = credentials(path)
    return boto3.session.Session(aws_access_key_id=key.access_key, aws_secret_access_key=key.secret_key,
                                 region_name=region)
