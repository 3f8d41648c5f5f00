namespace OmniBroker.Auth.Revocation;

/// <summary>Per-check state: the methods of an anchor's policy, each source's result and the certificate's resolution.</summary>
internal sealed partial class RevocationChecker
{
    internal enum Method
    {
        Ocsp,
        Crl,
    }

    internal sealed record AnchorPolicy(RevocationMode Mode, RevocationFailurePolicy FailurePolicy, OcspUnknownPolicy OcspUnknown,
        Uri? OcspResponder, Method[] Methods);

    private enum Outcome
    {
        Good,
        Revoked,

        /// <summary>A definite refusal without a revocation (OCSP unknown under "refuse").</summary>
        Refuse,

        Unavailable,
    }

    private readonly record struct MethodResult(Outcome Outcome, string Detail, bool ForceRefuse = false, bool NeedsNetwork = false,
        IReadOnlyList<Uri>? FetchUrls = null)
    {
        public IReadOnlyList<Uri> FetchUrls { get; init; } = FetchUrls ?? [];
    }

    /// <summary>Per-certificate results, one per method of the mode, in the mode's order.</summary>
    private sealed class CertState
    {
        public CertState(Method[] methods, Uri? responder)
        {
            Methods = methods;
            Responder = responder;
            Results = new MethodResult[methods.Length];
        }

        public Method[] Methods { get; }

        public Uri? Responder { get; }

        public MethodResult[] Results { get; }

        public bool Resolved { get; private set; }

        public Outcome Outcome { get; private set; } = Outcome.Unavailable;

        public string Detail { get; private set; } = "";

        public bool ForceRefuse { get; private set; }

        public bool NeedsNetwork => Results.Any(static r => r.NeedsNetwork);

        /// <summary>Answered as good by a source while an earlier (preferred) source still needs the network.</summary>
        public bool PreferredNeedsNetwork
        {
            get
            {
                if (!Resolved || Outcome != Outcome.Good)
                {
                    return false;
                }

                for (int k = 0; k < _resolvedBy; k++)
                {
                    if (Results[k].NeedsNetwork)
                    {
                        return true;
                    }
                }

                return false;
            }
        }

        private int _resolvedBy;

        /// <summary>Set the cached resolution aside so the preferred sources are asked first; the later cached
        /// answers stay and still count if the preferred source cannot answer.</summary>
        public void Reopen() => Resolved = false;

        public void Resolve()
        {
            for (int k = 0; k < Results.Length; k++)
            {
                if (Results[k].Outcome == Outcome.Revoked)
                {
                    Set(Results[k], k);
                    return;
                }
            }

            for (int k = 0; k < Results.Length; k++)
            {
                if (Results[k].Outcome is Outcome.Good or Outcome.Refuse)
                {
                    Set(Results[k], k);
                    return;
                }
            }

            Resolved = false;
            ForceRefuse = Results.Any(static r => r.ForceRefuse);
            Detail = Results.Length == 0 ? "no revocation method" : string.Join("; ", Results.Select(static r => r.Detail));
        }

        public void ResolveAs(Outcome outcome, string detail)
        {
            _resolvedBy = Results.Length;
            Resolved = true;
            Outcome = outcome;
            Detail = detail;
        }

        private void Set(MethodResult r, int index)
        {
            _resolvedBy = index;
            Resolved = true;
            Outcome = r.Outcome;
            Detail = r.Detail;
        }
    }
}
