package labelwise

// ServerAddressForExamples is the address of the server TestMain started, for the examples in
// example_test.go (package labelwise_test); the README shows it as "localhost:50051".
func ServerAddressForExamples() string { return address }
