using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace OmniBroker.Auth;

/// <summary>
/// OpenSSL settings SslStream does not expose, applied from the client-certificate callback to the server-side
/// <c>SSL</c> object and to its (shared) <c>SSL_CTX</c>, from which later connections inherit them:
/// <list type="bullet">
/// <item><c>SSL_MODE_RELEASE_BUFFERS</c>: OpenSSL frees its ~17 KiB read and write record buffers whenever they are
/// empty instead of keeping both for the life of the connection (Mosquitto sets the same mode); an idle device then
/// holds no TLS buffer.</item>
/// <item>No TLS 1.3 session tickets, none accepted, and no session cache (<c>SSL_CTX_set_num_tickets(0)</c>,
/// <c>SSL_OP_NO_TICKET</c>, cache mode off) unless <see cref="MutualTlsOptions.AllowTlsResume"/>. That lets the listener ask SslStream for a cached
/// <c>SSL_CTX</c> (which .NET only does with <c>AllowTlsResume = true</c>; otherwise it builds a new context, with the
/// certificate, key and cipher lists, for every connection and each idle connection keeps its own) while no session
/// can be resumed: after the first connection of a context no ticket is issued, none is accepted, no session is cached.</item>
/// </list>
/// The <c>SSL*</c> is SslStream's private <c>_securityContext</c> (a SafeHandle whose handle is the <c>SSL*</c> on
/// Linux). When that field is missing (another runtime), the platform is not Linux, or the runtime's OpenSSL is not
/// libssl.so.3, <see cref="IsAvailable"/> is false and the listener keeps .NET's defaults.
/// </summary>
internal static class OpenSslServerTuning
{
    private const string LibSsl = "libssl.so.3";
    private const string LibCrypto = "libcrypto.so.3";
    private const int SslCtrlMode = 33;               // SSL_CTRL_MODE
    private const long SslModeReleaseBuffers = 0x10;  // SSL_MODE_RELEASE_BUFFERS
    private const int SslCtrlSetSessCacheMode = 44;   // SSL_CTRL_SET_SESS_CACHE_MODE
    private const long SslSessCacheOff = 0;           // SSL_SESS_CACHE_OFF
    private const ulong SslOpNoTicket = 1UL << 14;    // SSL_OP_NO_TICKET: no stateless ticket is accepted either

    private static readonly FieldInfo? s_securityContext = typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic);
    private static int s_available; // 0 unknown, 1 yes, -1 no

    /// <summary>True when <see cref="Apply"/> can reach the OpenSSL object of a server SslStream in this process.</summary>
    public static bool IsAvailable
    {
        get
        {
            if (s_available == 0)
            {
                s_available = Probe();
            }
            return s_available > 0;
        }
    }

    /// <summary>Applies the settings to the handshake in progress on <paramref name="stream"/> (call from its
    /// certificate validation callback). Returns false when nothing could be applied.</summary>
    public static bool Apply(SslStream stream, bool allowResume)
    {
        if (!IsAvailable || s_securityContext!.GetValue(stream) is not SafeHandle { IsInvalid: false, IsClosed: false } context)
        {
            return false;
        }

        bool added = false;
        try
        {
            context.DangerousAddRef(ref added);
            nint ssl = context.DangerousGetHandle();
            SSL_ctrl(ssl, SslCtrlMode, SslModeReleaseBuffers, 0);
            // The SSL_CTX is shared by every connection of the listener and new SSL objects inherit its settings; writing
            // the same values again from each handshake is harmless. SslStream calls back once OpenSSL's part of the
            // handshake is done (a TLS 1.3 server has then already queued its tickets), so these take effect from the
            // next connection on: the first connection of a context may get tickets, which NoTicket and the disabled
            // cache make useless.
            nint ctx = SSL_get_SSL_CTX(ssl);
            SSL_CTX_ctrl(ctx, SslCtrlMode, SslModeReleaseBuffers, 0);
            if (!allowResume)
            {
                SSL_CTX_set_num_tickets(ctx, 0);
                SSL_CTX_set_options(ctx, SslOpNoTicket);
                SSL_CTX_ctrl(ctx, SslCtrlSetSessCacheMode, SslSessCacheOff, 0);
            }
            return true;
        }
        finally
        {
            if (added)
            {
                context.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Frees what an idle connection's OpenSSL state keeps from its handshake and never uses again; call once the
    /// handshake is over, before the first read or write (nothing else may touch the stream meanwhile):
    /// <list type="bullet">
    /// <item>SslStream's two memory BIOs (the bytes between OpenSSL and the socket) keep a buffer as large as the largest
    /// handshake flight (a BIO's buffer grows and never shrinks). Each empty one gets a fresh, empty buffer; the next
    /// record allocates what it needs.</item>
    /// <item>With <paramref name="dropPeerChain"/>: the intermediates the client sent, which OpenSSL keeps in the session
    /// for the life of the connection (each a decoded X509 with its key). The broker validated them already and never
    /// asks again; sessions are not cached or resumed, so nothing else reads them.</item>
    /// </list>
    /// Returns the bytes of BIO buffers freed (the dropped certificates are not counted), or -1 when nothing could be done.
    /// </summary>
    public static long TrimAfterHandshake(SslStream stream, bool dropPeerChain)
    {
        if (!IsAvailable || s_securityContext!.GetValue(stream) is not SafeHandle { IsInvalid: false, IsClosed: false } context)
        {
            return -1;
        }

        bool added = false;
        try
        {
            context.DangerousAddRef(ref added);
            nint ssl = context.DangerousGetHandle();
            nint read = SSL_get_rbio(ssl);
            nint write = SSL_get_wbio(ssl);
            long freed = ReplaceEmptyBuffer(read);
            if (write != read)
            {
                freed += ReplaceEmptyBuffer(write);
            }
            if (dropPeerChain && SSL_get_peer_cert_chain(ssl) is var chain and not 0)
            {
                // The stack is the session's own (not a copy): empty it in place; SSL_free frees the empty stack.
                while (OPENSSL_sk_num(chain) > 0)
                {
                    X509_free(OPENSSL_sk_pop(chain));
                }
            }
            return freed;
        }
        finally
        {
            if (added)
            {
                context.DangerousRelease();
            }
        }
    }

    private const int BioTypeMem = 1 | 0x0400;   // BIO_TYPE_MEM
    private const int BioCtrlPending = 10;       // BIO_CTRL_PENDING
    private const int BioCSetBufMem = 114;       // BIO_C_SET_BUF_MEM
    private const int BioCGetBufMemPtr = 115;    // BIO_C_GET_BUF_MEM_PTR
    private const long BioClose = 1;             // BIO_CLOSE

    private static long ReplaceEmptyBuffer(nint bio)
    {
        if (bio == 0 || BIO_method_type(bio) != BioTypeMem || BIO_ctrl(bio, BioCtrlPending, 0, 0) != 0)
        {
            return 0;
        }
        BIO_get_buf_mem(bio, BioCGetBufMemPtr, 0, out nint buffer);
        // struct buf_mem_st { size_t length; char *data; size_t max; unsigned long flags; }
        long max = buffer == 0 ? 0 : Marshal.ReadInt64(buffer, 2 * IntPtr.Size);
        if (max == 0)
        {
            return 0;
        }
        nint fresh = BUF_MEM_new();
        if (fresh == 0)
        {
            return 0;
        }
        // BIO_CLOSE: the BIO owns the new buffer; setting it frees the old one (bss_mem.c, mem_buf_free).
        BIO_ctrl(bio, BioCSetBufMem, BioClose, fresh);
        return max;
    }

    private static int Probe()
    {
        if (!OperatingSystem.IsLinux() || s_securityContext is null || !typeof(SafeHandle).IsAssignableFrom(s_securityContext.FieldType))
        {
            return -1;
        }

        // Only the very library the runtime uses: its SSL objects are not valid in another OpenSSL.
        string maps;
        try
        {
            maps = File.ReadAllText("/proc/self/maps");
        }
        catch (IOException)
        {
            return -1;
        }
        catch (UnauthorizedAccessException)
        {
            return -1;
        }
        if (maps.Contains("libssl.so.1", StringComparison.Ordinal))
        {
            return -1;
        }
        if (!maps.Contains("/" + LibSsl, StringComparison.Ordinal))
        {
            return 0; // not loaded yet: ask again later
        }
        // Both libraries from the runtime's own OpenSSL (already mapped), with every entry point used here.
        bool complete = HasExports(LibSsl, "SSL_ctrl", "SSL_CTX_ctrl", "SSL_CTX_set_num_tickets", "SSL_CTX_set_options", "SSL_get_SSL_CTX",
                "SSL_get_rbio", "SSL_get_wbio", "SSL_get_peer_cert_chain")
            && maps.Contains("/" + LibCrypto, StringComparison.Ordinal)
            && HasExports(LibCrypto, "BIO_ctrl", "BIO_method_type", "BUF_MEM_new", "OPENSSL_sk_num", "OPENSSL_sk_pop", "X509_free");
        return complete ? 1 : -1;

        static bool HasExports(string name, params string[] exports) =>
            NativeLibrary.TryLoad(name, out nint library) && exports.All(export => NativeLibrary.TryGetExport(library, export, out _));
    }

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern long SSL_ctrl(nint ssl, int cmd, long larg, nint parg);

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern long SSL_CTX_ctrl(nint ctx, int cmd, long larg, nint parg);

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int SSL_CTX_set_num_tickets(nint ctx, nuint numTickets);

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern ulong SSL_CTX_set_options(nint ctx, ulong options);

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint SSL_get_SSL_CTX(nint ssl);

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint SSL_get_rbio(nint ssl);

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint SSL_get_wbio(nint ssl);

    [DllImport(LibSsl)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint SSL_get_peer_cert_chain(nint ssl);

    [DllImport(LibCrypto)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern long BIO_ctrl(nint bio, int cmd, long larg, nint parg);

    [DllImport(LibCrypto, EntryPoint = "BIO_ctrl")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern long BIO_get_buf_mem(nint bio, int cmd, long larg, out nint buffer);

    [DllImport(LibCrypto)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int BIO_method_type(nint bio);

    [DllImport(LibCrypto)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint BUF_MEM_new();

    [DllImport(LibCrypto)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int OPENSSL_sk_num(nint stack);

    [DllImport(LibCrypto)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern nint OPENSSL_sk_pop(nint stack);

    [DllImport(LibCrypto)]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern void X509_free(nint x509);
}
