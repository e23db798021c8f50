"""Importing this module leaves a mark: the hostile-input tests check that data never imports it."""

import os
import pathlib

from pydantic import BaseModel

if os.environ.get("GECKO_CANARY_FILE"):
    pathlib.Path(os.environ["GECKO_CANARY_FILE"]).write_text("imported")


class Boom(BaseModel):
    x: int = 0
