module corio-benches/go

go 1.19
