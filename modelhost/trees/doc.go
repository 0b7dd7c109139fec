// Package trees serves gradient-boosted tree ensembles in Go, without
// Python: the runtime "xgboost" reads XGBoost's JSON model format
// (Booster.save_model("model.json"), or its UBJSON twin "model.ubj"), the
// runtime "lightgbm" LightGBM's text format (Booster.save_model("model.txt")). A model is data the
// member interprets: loading takes milliseconds, a request microseconds,
// and the memory a model holds is the size of its loaded nodes, known
// exactly.
//
// Programs link the runtimes like database/sql drivers; the manta command
// does (cmd/manta/drivers.go), the SDK does not:
//
//	import _ "github.com/manta-ml/manta/modelhost/trees"
//
// # Manifest
//
//	{"id": "eta-de-fr", "runtime": "xgboost", "entrypoint": "model.json"}
//	{"id": "churn", "runtime": "lightgbm", "entrypoint": "model.txt"}
//
// "format" may be left out, or be "xgboost-json" / "lightgbm-text".
// `manta models push DIR` loads the model once before uploading anything
// (Runtime.CheckPush): a file that does not parse is refused with bad_input
// naming the file and the parser's message, and memory_bytes is filled from
// the loaded structure (nodes × node size plus per-tree arrays) unless the
// manifest sets it. The cache accounts that number (Model.MemoryBytes).
// Push also records the options "n_features" and, for classifiers,
// "predict_proba": "true", which the Open Inference Protocol's model
// metadata reports (the runtime does not read them).
//
// # Requests and answers
//
// A request is one row: {"features": [x0, x1, ...]}, exactly as many
// numbers as the model has features, null for a missing value. Requests
// batched together by the model actor are evaluated together, tree by
// tree over all rows of the batch. Answers:
//
//	regressor   {"prediction": 41.7}
//	binary      {"prediction": 1, "probabilities": [0.2, 0.8]}
//	multiclass  {"prediction": 2, "probabilities": [0.1, 0.3, 0.6]}
//
// A binary classifier's class is 1 when P(1) > 0.5 (as XGBClassifier and
// LGBMClassifier predict); a multiclass one's is the first most probable.
// A row with the wrong number of values, values that are not numbers or
// null, or another shape fails alone with bad_input ("features: got 3
// values, want 8"); the other rows of its batch are answered. The Open
// Inference Protocol's /v2 infer maps its "features" tensor to these rows
// and "prediction" / "probabilities" back to output tensors.
//
// # XGBoost
//
// Objectives: reg:squarederror (and reg:linear), reg:squaredlogerror,
// reg:pseudohubererror, reg:absoluteerror, reg:quantileerror (one
// quantile), reg:logistic, reg:gamma, reg:tweedie, count:poisson,
// survival:cox, binary:logitraw, binary:hinge, rank:pairwise, rank:ndcg,
// rank:map (all answered as regressors), binary:logistic (binary),
// multi:softprob and multi:softmax (multiclass; softmax answers its class
// and the probabilities softprob would). Boosters gbtree and dart.
// base_score is read as XGBoost reads it (through the objective's link:
// logit for logistic objectives, log for gamma, tweedie, poisson and cox).
// Not served, refused at load with the reason: gblinear (use runtime
// "linear"), categorical splits, vector leaves and multi-target models,
// and XGBoost's old binary format (what 1.x writes for names other than
// .json and .ubj: re-save the model as JSON).
//
// Manta reads the JSON itself rather than through
// github.com/dmitryikh/leaves, which reads only XGBoost's old binary
// format, and not as XGBoost 1.7 writes it (its reader takes a string
// length from the wrong place of a 1.7 file and runs out of memory).
// UBJSON is transcoded to JSON first (ubjson.go), with every count checked
// against the bytes left. Evaluation follows XGBoost's CPU predictor: features as float32,
// x < split goes left, a missing value takes the node's default side, each
// output group's margin summed in float32 from the base margin, tree by
// tree in file order, then the objective's transform. Answers equal
// xgboost's predict within float32 rounding of the transform
// (TestXGBoostOracle: 1,200 rows per objective against Debian's
// python3-xgboost 1.7).
//
// # LightGBM
//
// Objectives: regression and its aliases, regression_l1, huber, fair,
// quantile, mape, lambdarank, rank_xendcg (regressors); poisson, gamma,
// tweedie (exp of the raw score); cross_entropy (a probability, answered
// as a regressor); binary with any sigmoid:k (binary); multiclass and
// multiclassova (multiclass). Numerical and categorical splits, the three
// missing-value types. Not served: random forests (average_output) and
// linear trees.
//
// github.com/dmitryikh/leaves evaluates the trees. Manta adds around it:
//
//   - a checking pass over the text, with leaves' own tokenizer, before
//     leaves reads it: leaves indexes arrays with numbers from the file
//     (children, leaves, features, categorical boundaries) without bounds
//     checks, sizes allocations by num_leaves, and would loop forever on a
//     child that revisits a node. Checked first, a malformed file is an
//     error, never a panic, a hang or an allocation beyond the file's size
//     (FuzzLightGBM; FuzzXGBoost does the same for the XGBoost reader);
//   - the objective's transform, applied to leaves' raw scores: leaves
//     knows only sigmoid:1, and no multiclassova, cross_entropy, huber,
//     fair, quantile or mape;
//   - LightGBM 4's "version=v4" header, which leaves refuses though the
//     tree format is v3's.
//
// # The Python path
//
// The Python worker (package pyworker) still serves XGBoost models, as
// runtime "python" with format "xgboost": a manifest that says so keeps
// working, and is the way to serve what this package refuses (the old
// binary format, categorical splits, a pickled sklearn-API model). This package's
// runtimes are named "xgboost" and "lightgbm" and never see those
// manifests.
package trees
