module github.com/manta-ml/manta

go 1.26.8

require google.golang.org/protobuf v1.34.2

require github.com/google/go-cmp v0.6.0 // indirect
