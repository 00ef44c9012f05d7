// Java Admin client 3.9.1 delegation-token calls, one per run. Extra client properties (security.protocol,
// sasl.*) come as key=value args after the operation's own args. Prints one JSON line, or
// {"error":"<exception class>: <message>"} (exit 0 either way, so a test can assert on the refusal).
//
// usage: java -cp '.tools/jars/*' TokenAdmin.java BOOTSTRAP OP ARG... [key=value...]
//   create OWNER|- RENEWER|- MAX_LIFETIME_MS -> {"tokenId","hmac"(base64),"owner","requester","renewers",
//                                                "issue","expiry","max"}
//   renew HMAC_B64 PERIOD_MS                  -> {"expiry":N}
//   expire HMAC_B64 PERIOD_MS                 -> {"expiry":N}
//   describe OWNER|-                          -> {"tokens":[{token fields as create}...]}
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.common.security.token.delegation.DelegationToken;
import org.apache.kafka.common.security.token.delegation.TokenInformation;
import org.apache.kafka.common.utils.SecurityUtils;

public class TokenAdmin {
    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static String token(DelegationToken t) {
        TokenInformation i = t.tokenInfo();
        StringBuilder r = new StringBuilder("[");
        for (KafkaPrincipal p : i.renewers()) r.append(r.length() > 1 ? "," : "").append(q(p.toString()));
        return "{\"tokenId\":" + q(i.tokenId()) + ",\"hmac\":" + q(t.hmacAsBase64String())
            + ",\"owner\":" + q(i.owner().toString()) + ",\"requester\":" + q(i.tokenRequester().toString())
            + ",\"renewers\":" + r + "],\"issue\":" + i.issueTimestamp() + ",\"expiry\":" + i.expiryTimestamp()
            + ",\"max\":" + i.maxTimestamp() + "}";
    }

    public static void main(String[] args) throws Exception {
        String op = args[1];
        int nargs = switch (op) { case "create" -> 3; case "renew", "expire" -> 2; default -> 1; };
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 20000);
        for (int i = 2 + nargs; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            p.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        try (Admin admin = Admin.create(p)) {
            String out;
            switch (op) {
                case "create": {
                    CreateDelegationTokenOptions o = new CreateDelegationTokenOptions()
                        .maxlifeTimeMs(Long.parseLong(args[4]));
                    if (!args[2].equals("-")) o.owner(SecurityUtils.parseKafkaPrincipal(args[2]));
                    if (!args[3].equals("-")) o.renewers(List.of(SecurityUtils.parseKafkaPrincipal(args[3])));
                    out = token(admin.createDelegationToken(o).delegationToken().get());
                    break;
                }
                case "renew":
                    out = "{\"expiry\":" + admin.renewDelegationToken(Base64.getDecoder().decode(args[2]),
                        new RenewDelegationTokenOptions().renewTimePeriodMs(Long.parseLong(args[3])))
                        .expiryTimestamp().get() + "}";
                    break;
                case "expire":
                    out = "{\"expiry\":" + admin.expireDelegationToken(Base64.getDecoder().decode(args[2]),
                        new ExpireDelegationTokenOptions().expiryTimePeriodMs(Long.parseLong(args[3])))
                        .expiryTimestamp().get() + "}";
                    break;
                case "describe": {
                    DescribeDelegationTokenOptions o = new DescribeDelegationTokenOptions();
                    if (!args[2].equals("-")) o.owners(List.of(SecurityUtils.parseKafkaPrincipal(args[2])));
                    StringBuilder b = new StringBuilder("{\"tokens\":[");
                    boolean first = true;
                    for (DelegationToken t : admin.describeDelegationToken(o).delegationTokens().get()) {
                        b.append(first ? "" : ",").append(token(t));
                        first = false;
                    }
                    out = b.append("]}").toString();
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown op " + op);
            }
            System.out.println(out);
        } catch (Exception e) {
            Throwable t = e.getCause() == null ? e : e.getCause();
            System.out.println("{\"error\":" + q(t.getClass().getSimpleName() + ": " + t.getMessage()) + "}");
        }
    }
}
