// Java Admin client 3.9.1 with client.id CLIENT_ID, retries on quota violations off: runs
// createTopics / createPartitions / deleteTopics one at a time and prints one JSON array
// with one result per op: {"ok":true} or {"error":"<ExceptionClass>","throttle":<ms or -1>}.
//
// usage: java -cp '.tools/jars/*' MutationQuota.java BOOTSTRAP CLIENT_ID create:T:PARTITIONS partitions:T:COUNT delete:T
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.errors.ThrottlingQuotaExceededException;

public class MutationQuota {
    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, args[1]);
        List<String> out = new ArrayList<>();
        try (Admin admin = Admin.create(p)) {
            for (int i = 2; i < args.length; i++) {
                String[] w = args[i].split(":");
                try {
                    switch (w[0]) {
                        case "create":
                            admin.createTopics(List.of(new NewTopic(w[1], Integer.parseInt(w[2]), (short) 1)),
                                new CreateTopicsOptions().retryOnQuotaViolation(false)).all().get();
                            break;
                        case "partitions":
                            admin.createPartitions(Map.of(w[1], NewPartitions.increaseTo(Integer.parseInt(w[2]))),
                                new CreatePartitionsOptions().retryOnQuotaViolation(false)).all().get();
                            break;
                        default:
                            admin.deleteTopics(List.of(w[1]),
                                new DeleteTopicsOptions().retryOnQuotaViolation(false)).all().get();
                    }
                    out.add("{\"ok\":true}");
                } catch (ExecutionException e) {
                    Throwable t = e.getCause();
                    int throttle = t instanceof ThrottlingQuotaExceededException
                        ? ((ThrottlingQuotaExceededException) t).throttleTimeMs() : -1;
                    out.add("{\"error\":\"" + t.getClass().getSimpleName() + "\",\"throttle\":" + throttle + "}");
                }
            }
        }
        System.out.println("[" + String.join(",", out) + "]");
    }
}
