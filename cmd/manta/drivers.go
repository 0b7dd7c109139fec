package main

// The manta command serves every kind of model and store Manta ships. The
// SDK links none of them (a program that embeds it imports the ones it
// wants, as database/sql users import a driver); the command does, here.
import (
	_ "github.com/manta-ml/manta/modelhost/onnx"    // the onnx runtime (ONNX graphs, in Go)
	_ "github.com/manta-ml/manta/modelhost/s3store" // s3:// stores (MinIO, S3)
	_ "github.com/manta-ml/manta/modelhost/trees"   // the xgboost and lightgbm runtimes (in Go)
	_ "github.com/manta-ml/manta/pyworker"          // the python runtime (sklearn, xgboost, python-class)
)
