package main

import "fmt"

// payload is the value of write seq: 100 bytes, the same for Shoal (as a
// ConfigMap's data) and etcd.
func payload(seq int) []byte {
	b := fmt.Appendf(nil, `{"data":{"v":"%020d`, seq)
	for len(b) < 97 {
		b = append(b, 'x')
	}
	return append(b, `"}}`...)
}
