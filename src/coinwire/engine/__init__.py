"""coinwire.engine"""
