-- What a model was uploaded with (store keys of the ONNX file and calibration input, compile
-- options) and, once set up, the store keys of its compiled folder's files.
ALTER TABLE models ADD COLUMN upload TEXT;
ALTER TABLE models ADD COLUMN artifacts TEXT;
