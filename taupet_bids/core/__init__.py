"""The plain imaging core: functions on arrays and NIfTI files, without Nipype or PyTorch.

Interfaces, the MR-less normalisation, the simulator, training and the benchmarks all call these
functions, so each operation is implemented (and tested) once. The core imports only the layers
below it (templates, atlases, errors, ...); ``make lint`` checks that (``.importlinter``).
"""
