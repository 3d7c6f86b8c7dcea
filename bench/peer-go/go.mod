module gevbench/peergo

go 1.19
