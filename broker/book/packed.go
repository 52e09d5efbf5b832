package book

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// The book keeps each offer document deflated against a preset dictionary
// of what offer documents in canonical JSON have in common: member names
// in canonical order and common values. The signed documents are most of
// what a book holds, and a document of about 740 bytes keeps about 225.
// The dictionary lives only in memory, so it may change between versions.
var offerDict = []byte(`"timezone":"Europe/"timezone":"America/"timezone":"Asia/"timezone":"UTC"},"tiers":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"end":"24:00","name":"night","rates":{"instanceHour":"0.","start":"00:00"}],"tokensInPerMillion":"","tokensOutPerMillion":"","storageGiBMonth":"0.","egressGiB":"0.","gibHour":"0.00","acceleratorHour":"","spot","region":"us-east-1","region":"eu-west-1","region":"ap-southeast-1","region":"cn-north-1","jurisdiction":"US","jurisdiction":"EU","jurisdiction":"CN",{"apiVersion":"cinet/v1","broker":"did:key:z6Mk","class":{"accelerators":[{"computeCapability":"9.0","count":8,"frameworks":[{"name":"cuda","version":"12.4"},{"name":"rocm","version":"6.0"}],"memory":"80Gi","model":"H100","tflops":{"fp16":"","fp32":"","fp64":"","int8":""}}],"cpu":{"arch":"x86_64","count":16,"vendor":"intel"},"disk":"100Gi","memory":"64Gi"},"computeId":"ci:","jurisdiction":"","kind":"Offer","metadata":{"labels":{"tier":"standard"},"name":"","price":{"currency":"USD","market":"on-demand","minimumIncrement":"1s","rates":{"instanceHour":"0.","vcpuHour":"0.0"}},"provider":"did:key:z6Mk","quantity":1,"region":"","sequence":1,"validFrom":"2026-","validUntil":"2027-","zone":"`)

var (
	packers   = sync.Pool{New: func() any { w, _ := flate.NewWriterDict(nil, flate.DefaultCompression, offerDict); return w }}
	unpackers = sync.Pool{New: func() any { return flate.NewReaderDict(bytes.NewReader(nil), offerDict) }}
)

// pack deflates a document.
func pack(doc []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(doc)/3 + 16)
	w := packers.Get().(*flate.Writer)
	defer packers.Put(w)
	w.Reset(&buf)
	// Writing to a bytes.Buffer cannot fail.
	w.Write(doc)
	w.Close()
	return bytes.Clone(buf.Bytes()) // exactly as long as it must be
}

// unpack inflates what pack deflated.
func unpack(packed []byte) ([]byte, error) {
	r := unpackers.Get().(io.ReadCloser)
	defer unpackers.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(packed), offerDict); err != nil {
		return nil, err
	}
	doc, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("book: a kept offer document does not inflate: %w", err)
	}
	return doc, nil
}
