"""core/build"""
