"""The staff pages' blueprint, shared by the modules that add routes to it."""

from flask import Blueprint

bp = Blueprint("staff", __name__, url_prefix="/admin")
