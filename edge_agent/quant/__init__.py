"""INT8 models made on the board from the fp32 ONNX, and the runtime's account of which ops stayed in fp32."""
