// Java Admin client 3.9.1: CreateAcls, DescribeAcls and DeleteAcls steps. Prints one JSON line
// {"s0":{...},"s1":{...}} with, per step, {"ok":true}, {"bindings":[...]}, {"deleted":[...]}
// or {"error":"<exception class>: <message>"}. A binding prints as
// "TOPIC:LITERAL:name User:alice * READ ALLOW"; lists are sorted.
//
// usage: java -cp '.tools/jars/*' AclOps.java BOOTSTRAP [--prop k=v]... STEP...
//   STEP = op|resourceType|name|patternType|principal|host|operation|permission
//   op = create, describe or delete; "-" = null (names, principal, host) or ANY (enums).
import java.util.*;
import java.util.stream.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.acl.*;
import org.apache.kafka.common.resource.*;

public class AclOps {
    static String str(String s) { return s.equals("-") ? null : s; }

    static String show(AclBinding b) {
        ResourcePattern p = b.pattern();
        AccessControlEntry e = b.entry();
        return p.resourceType() + ":" + p.patternType() + ":" + p.name() + " " + e.principal() + " "
            + e.host() + " " + e.operation() + " " + e.permissionType();
    }

    static String quote(String s) { return "\"" + s.replace("\\", "\\\\").replace("\"", "'") + "\""; }

    static String list(Stream<String> s) {
        return "[" + s.sorted().map(AclOps::quote).collect(Collectors.joining(",")) + "]";
    }

    static String error(Throwable e) {
        Throwable t = e.getCause() == null ? e : e.getCause();
        return "{\"error\":" + quote(t.getClass().getSimpleName() + ": " + t.getMessage()) + "}";
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        List<String> steps = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--prop")) {
                String[] kv = args[++i].split("=", 2);
                props.put(kv[0], kv[1]);
            } else {
                steps.add(args[i]);
            }
        }
        StringBuilder out = new StringBuilder("{");
        try (Admin admin = Admin.create(props)) {
            for (int i = 0; i < steps.size(); i++) {
                String[] f = steps.get(i).split("\\|", -1);
                ResourceType rt = f[1].equals("-") ? ResourceType.ANY : ResourceType.valueOf(f[1]);
                PatternType pt = f[3].equals("-") ? PatternType.ANY : PatternType.valueOf(f[3]);
                AclOperation op = f[6].equals("-") ? AclOperation.ANY : AclOperation.valueOf(f[6]);
                AclPermissionType perm = f[7].equals("-") ? AclPermissionType.ANY : AclPermissionType.valueOf(f[7]);
                String result;
                try {
                    switch (f[0]) {
                        case "create":
                            admin.createAcls(List.of(new AclBinding(new ResourcePattern(rt, f[2], pt),
                                new AccessControlEntry(f[4], f[5], op, perm)))).all().get();
                            result = "{\"ok\":true}";
                            break;
                        case "describe": {
                            AclBindingFilter filter = new AclBindingFilter(
                                new ResourcePatternFilter(rt, str(f[2]), pt),
                                new AccessControlEntryFilter(str(f[4]), str(f[5]), op, perm));
                            Collection<AclBinding> got = admin.describeAcls(filter).values().get();
                            result = "{\"bindings\":" + list(got.stream().map(AclOps::show)) + "}";
                            break;
                        }
                        default: {
                            AclBindingFilter filter = new AclBindingFilter(
                                new ResourcePatternFilter(rt, str(f[2]), pt),
                                new AccessControlEntryFilter(str(f[4]), str(f[5]), op, perm));
                            DeleteAclsResult.FilterResults r =
                                admin.deleteAcls(List.of(filter)).values().get(filter).get();
                            List<String> deleted = new ArrayList<>();
                            for (DeleteAclsResult.FilterResult fr : r.values()) {
                                if (fr.exception() != null) throw fr.exception();
                                deleted.add(show(fr.binding()));
                            }
                            result = "{\"deleted\":" + list(deleted.stream()) + "}";
                        }
                    }
                } catch (Exception e) {
                    result = error(e);
                }
                out.append(i == 0 ? "" : ",").append("\"s").append(i).append("\":").append(result);
            }
        }
        System.out.println(out.append("}"));
    }
}
