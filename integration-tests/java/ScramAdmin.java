// Java Admin client 3.9.1: AlterUserScramCredentials (an upsertion of USER with PASSWORD for MECHANISM
// at 4096 iterations, and one with too few iterations for USER-bad), then DescribeUserScramCredentials
// of every user. Prints one JSON line:
// {"bad":"<exception>","users":{"user":[["SCRAM-SHA-256",4096],...],...}}
//
// usage: java -cp '.tools/jars/*' ScramAdmin.java BOOTSTRAP USER PASSWORD MECHANISM
import java.util.*;
import org.apache.kafka.clients.admin.*;

public class ScramAdmin {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        String user = args[1], password = args[2];
        ScramMechanism mech = ScramMechanism.fromMechanismName(args[3]);
        try (Admin admin = Admin.create(p)) {
            admin.alterUserScramCredentials(List.of(
                new UserScramCredentialUpsertion(user, new ScramCredentialInfo(mech, 4096), password)))
                .all().get();
            String bad;
            try {
                admin.alterUserScramCredentials(List.of(
                    new UserScramCredentialUpsertion(user + "-bad", new ScramCredentialInfo(mech, 100), password)))
                    .all().get();
                bad = "accepted";
            } catch (Exception e) {
                Throwable t = e.getCause() == null ? e : e.getCause();
                bad = t.getClass().getSimpleName() + ": " + t.getMessage();
            }
            Map<String, UserScramCredentialsDescription> all =
                admin.describeUserScramCredentials().all().get();
            StringBuilder out = new StringBuilder("{\"bad\":\"" + bad.replace("\"", "'") + "\",\"users\":{");
            boolean first = true;
            for (Map.Entry<String, UserScramCredentialsDescription> e : new TreeMap<>(all).entrySet()) {
                out.append(first ? "" : ",").append("\"").append(e.getKey()).append("\":[");
                first = false;
                boolean f2 = true;
                for (ScramCredentialInfo i : e.getValue().credentialInfos()) {
                    out.append(f2 ? "" : ",").append("[\"").append(i.mechanism().mechanismName())
                        .append("\",").append(i.iterations()).append("]");
                    f2 = false;
                }
                out.append("]");
            }
            System.out.println(out.append("}}"));
        }
    }
}
