"""Edge runtime: live digit recognition on a Jetson Nano (Python 3.6) and any desktop.

Imports only the stdlib at package import; numpy, cv2, onnxruntime, tensorrt and
pycuda are imported inside the modules that need them.
"""

__version__ = "0.1.0"
