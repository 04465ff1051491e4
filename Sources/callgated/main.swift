print("callgated")
