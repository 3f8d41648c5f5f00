#!/usr/bin/env python3
# Self time by component from `perf script` output (docs/benchmarks.md, issue 13): each sample is counted by the
# first frame from the leaf that names a component. Usage: perf script -i perf.data > out.txt; scripts/perf-components.py out.txt
import sys, re, collections
CATS = [
 ("thread pool spin/wait (sched_yield, futex, semaphores)", r'sched_yield|futex|LowLevelLifoSemaphore|LowLevelMonitor|WaitSubsystem|PortableThreadPool|SpinWait|Thread::Sleep|YieldProcessor'),
 ("OpenSSL (libssl, libcrypto)", r'libssl|libcrypto'),
 ("X509 chain build (managed)", r'X509Chain|ChainPal|OpenSslX509ChainProcessor'),
 ("GC", r'gc_heap|GCHeap|WKS::|SVR::|GarbageCollect|Alloc'),
 ("JIT", r'libclrjit'),
 ("logging", r'Microsoft\.Extensions\.Logging|ConsoleLogger|Logger'),
 ("broker code (OmniBroker.*)", r'OmniBroker\.'),
 ("Kestrel + pipes", r'Kestrel|System\.IO\.Pipelines'),
 ("SslStream managed", r'System\.Net\.Security'),
 ("sockets + TCP (kernel, managed)", r'System\.Net\.Sockets|SystemNative_(Send|Recv|Read|Write|Shutdown|Accept|Close|Connect)|tcp_|sock_|inet_|epoll|__sys_|ip_|skb|SocketAsyncEngine'),
 ("runtime (libcoreclr, stubs, other managed)", r'libcoreclr|System\.Private\.CoreLib|IL_STUB|libSystem'),
]
counts=collections.Counter(); total=0; stack=[]
def flush():
    global total
    if not stack: return
    total_local=1
    for f in stack:
        for name,pat in CATS:
            if re.search(pat,f): counts[name]+=1; return
    counts['kernel/other']+=1
for line in open(sys.argv[1], errors='replace'):
    if not line.strip():
        if stack: total+=1; flush()
        stack=[]; continue
    if line.startswith((' ','\t')): stack.append(line.strip())
if stack: total+=1; flush()
print("samples", total)
for name,_ in CATS+[('kernel/other',None)]:
    print(f"| {name} | {100.0*counts[name]/max(total,1):.1f}% |")
