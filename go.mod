module github.com/ucpbridge/ucpbridge

go 1.26

require (
	github.com/go-jose/go-jose/v4 v4.1.8
	github.com/gowebpki/jcs v1.0.2
)
