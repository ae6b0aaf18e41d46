package io.shoalmesh.samples;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;

/** The POJO of GreetingService (Go: a struct registered as io.shoalmesh.samples.Person). */
public class Person implements Serializable {
    private static final long serialVersionUID = 1L;

    private String name;
    private int age;
    private String greeting;
    private Map<String, String> seen = new HashMap<>();

    public Person() {}

    public Person(String name, int age) {
        this.name = name;
        this.age = age;
    }

    public String getName() { return name; }
    public void setName(String name) { this.name = name; }
    public int getAge() { return age; }
    public void setAge(int age) { this.age = age; }
    public String getGreeting() { return greeting; }
    public void setGreeting(String greeting) { this.greeting = greeting; }
    public Map<String, String> getSeen() { return seen; }
    public void setSeen(Map<String, String> seen) { this.seen = seen; }
}
