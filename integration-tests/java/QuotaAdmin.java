// Java Admin client 3.9.1: alterClientQuotas / describeClientQuotas, as kafka-configs.sh
// --bootstrap-server --entity-type users|clients|ips drives them. Each argument after
// BOOTSTRAP is one command; prints one JSON array with one result per command.
//
//   alter ENTITY KEY=VALUE... [validate]   ENTITY = type=name[,type=name] (name <default> = the
//                                          default entity); KEY= (no value) removes KEY
//       -> {"ok":true} or {"error":"<ExceptionClass>: <message>"}
//   describe strict|loose [type=name...]  name * = any specified name, <default> = the default
//       -> {"entries":[{"entity":{"user":"alice","client-id":null},"values":{"producer_byte_rate":1024.0}}]}
//          or {"error":...}
//
// usage: java -cp '.tools/jars/*' QuotaAdmin.java BOOTSTRAP 'alter client-id=app producer_byte_rate=1024' ...
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.quota.*;

public class QuotaAdmin {
    static String str(String s) {
        return s == null ? "null" : "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    static String error(Exception e) {
        Throwable t = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        return "{\"error\":" + str(t.getClass().getSimpleName() + ": " + t.getMessage()) + "}";
    }

    static String name(String n) {
        return n.equals("<default>") ? null : n;
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        List<String> out = new ArrayList<>();
        try (Admin admin = Admin.create(p)) {
            for (int i = 1; i < args.length; i++) {
                String[] w = args[i].trim().split("\\s+");
                try {
                    if (w[0].equals("alter")) {
                        Map<String, String> entity = new HashMap<>();
                        for (String kv : w[1].split(",")) {
                            String[] e = kv.split("=", 2);
                            entity.put(e[0], name(e[1]));
                        }
                        List<ClientQuotaAlteration.Op> ops = new ArrayList<>();
                        boolean validate = false;
                        for (int j = 2; j < w.length; j++) {
                            if (w[j].equals("validate")) { validate = true; continue; }
                            String[] kv = w[j].split("=", 2);
                            ops.add(new ClientQuotaAlteration.Op(kv[0], kv[1].isEmpty() ? null : Double.valueOf(kv[1])));
                        }
                        admin.alterClientQuotas(List.of(new ClientQuotaAlteration(new ClientQuotaEntity(entity), ops)),
                            new AlterClientQuotasOptions().validateOnly(validate)).all().get();
                        out.add("{\"ok\":true}");
                    } else {
                        List<ClientQuotaFilterComponent> comps = new ArrayList<>();
                        for (int j = 2; j < w.length; j++) {
                            String[] kv = w[j].split("=", 2);
                            comps.add(kv[1].equals("*") ? ClientQuotaFilterComponent.ofEntityType(kv[0])
                                : kv[1].equals("<default>") ? ClientQuotaFilterComponent.ofDefaultEntity(kv[0])
                                : ClientQuotaFilterComponent.ofEntity(kv[0], kv[1]));
                        }
                        ClientQuotaFilter f = w[1].equals("strict") ? ClientQuotaFilter.containsOnly(comps)
                            : ClientQuotaFilter.contains(comps);
                        Map<ClientQuotaEntity, Map<String, Double>> r = admin.describeClientQuotas(f).entities().get();
                        StringBuilder sb = new StringBuilder("{\"entries\":[");
                        boolean first = true;
                        for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e : r.entrySet()) {
                            sb.append(first ? "" : ",").append("{\"entity\":{");
                            first = false;
                            boolean f2 = true;
                            for (Map.Entry<String, String> en : new TreeMap<>(e.getKey().entries()).entrySet()) {
                                sb.append(f2 ? "" : ",").append(str(en.getKey())).append(":").append(str(en.getValue()));
                                f2 = false;
                            }
                            sb.append("},\"values\":{");
                            f2 = true;
                            for (Map.Entry<String, Double> v : new TreeMap<>(e.getValue()).entrySet()) {
                                sb.append(f2 ? "" : ",").append(str(v.getKey())).append(":").append(v.getValue());
                                f2 = false;
                            }
                            sb.append("}}");
                        }
                        out.add(sb.append("]}").toString());
                    }
                } catch (Exception e) {
                    out.add(error(e));
                }
            }
        }
        System.out.println("[" + String.join(",", out) + "]");
    }
}
