"""Nipype graph builders (``init_*_wf``): they wire interfaces, they compute nothing."""
